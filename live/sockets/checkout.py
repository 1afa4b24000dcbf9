"""`checkout.pay` over the socket, acked with the order: the same `CheckoutPart.pay` as
POST /api/checkout, and the same idempotency protocol (`live.idempotent.once`) with the
payload's `idempotency_key` in the header's part. Also the `checkout` snapshot part."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checkout.idempotency import fingerprint, valid_key
from domain import Code, DomainError
from live.auth import Claims
from live.checkout_part import CheckoutPart, order_json
from live.hub.registry import EVERYONE, Caller
from live.idempotent import Kept, Protocol, Replayed, once

if TYPE_CHECKING:
    from live.node import Node


def _keep_ack(ack: dict[str, Any]) -> Kept:
    return 0, ack


def _keep_refusal(exc: Exception) -> Kept:
    if not isinstance(exc, DomainError) or exc.code == Code.PAYMENT_TIMEOUT:  # nothing decided: a retry runs again
        return None
    return 0, {"ok": False, "error": exc.body()}


def _refuse(code: str) -> Exception:
    if code == Code.IDEMPOTENCY_MISMATCH:
        return DomainError(Code.IDEMPOTENCY_MISMATCH, "this idempotency_key was used with a different payload")
    return DomainError(Code.IDEMPOTENCY_IN_PROGRESS, "a payment with this idempotency_key is still running",
                       retry_after=1000)


SOCKET: Protocol[dict[str, Any]] = Protocol(keep=_keep_ack, keep_error=_keep_refusal, refuse=_refuse)


class CheckoutSocket:
    def __init__(self, node: Node) -> None:
        self.part: CheckoutPart = node.checkout
        self.idem = node.idempotency

    async def pay(self, caller: Caller, payload: dict) -> dict:
        """The same payment as POST /api/checkout; `idempotency_key` in the payload plays the header's
        part (same key + same payload -> the first ack; another payload -> IDEMPOTENCY_MISMATCH)."""
        claims = Claims(sub=caller.user, role=caller.role, broadcast=caller.broadcast, name=caller.name, exp=caller.exp)
        key = payload.get("idempotency_key")
        if key is not None and not (isinstance(key, str) and valid_key(key)):
            raise DomainError(Code.VALIDATION, "idempotency_key must be 1 to 255 printable characters", field="idempotency_key")
        if key is None:
            return await self._pay(claims, payload)
        answer = await once(self.idem, caller.user, "socket:checkout.pay:" + key, fingerprint("checkout.pay", payload),
                            lambda: self._pay(claims, payload), SOCKET)
        if not isinstance(answer, Replayed):
            return answer
        if answer.body.get("ok") is False:  # the first answer was a refusal: the same one again
            first = dict(answer.body["error"])
            raise DomainError(Code(first.pop("code")), first.pop("message", ""), **first)
        return {**answer.body, "replayed": True}

    async def _pay(self, claims: Claims, payload: dict) -> dict:
        order = await self.part.pay(claims, payload)  # CheckoutError: refused with its code (and order)
        return {"order": order_json(order)}

    async def snapshot_part(self, caller: Caller) -> dict[str, Any]:
        """What the player needs to know before paying: whether payments are real (livemode)."""
        return {"livemode": self.part.livemode, "provider": getattr(self.part.provider, "name", "")}  # a plugin provider may be unnamed


def register(node: Node) -> None:
    sock = CheckoutSocket(node)
    node.hub.command("checkout.pay", roles=EVERYONE, cost=3)(sock.pay)
    node.hub.snapshot_part("checkout")(sock.snapshot_part)
