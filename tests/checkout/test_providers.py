"""Choosing the payment provider: `sandbox` or any `package.module:factory` (HAWKER_PAYMENT_PROVIDER)."""
from __future__ import annotations

import pytest

from checkout import SandboxProvider
from checkout.payments import load_provider
from tests.checkout.test_api import body, hold_for, post, shop  # noqa: F401 - fixture
from tests.hub.conftest import clients  # noqa: F401 - fixture


class RecordingProvider(SandboxProvider):
    """A stand-in for a real provider: the sandbox's behaviour, plus a record of what it was asked."""

    name = "recording"

    def __init__(self, redis) -> None:
        super().__init__(redis)
        self.asked: list[tuple[str, int, str]] = []

    async def charge(self, *, key, amount, currency, card):
        self.asked.append((key, amount, currency))
        return await super().charge(key=key, amount=amount, currency=currency, card=card)


def make(redis):
    return RecordingProvider(redis)


def not_a_provider(redis):
    return object()


def test_load_provider_specs(redis) -> None:
    assert isinstance(load_provider("sandbox", redis), SandboxProvider)
    assert isinstance(load_provider(f"{__name__}:make", redis), RecordingProvider)
    with pytest.raises(ValueError):
        load_provider("stripe", redis)
    with pytest.raises(TypeError):
        load_provider(f"{__name__}:not_a_provider", redis)
    with pytest.raises(ModuleNotFoundError):
        load_provider("no_such_module_here:make", redis)


@pytest.fixture
async def server(make_server):
    """The node of `shop`, configured with the recording provider."""
    return await make_server(payment_provider=f"{__name__}:make")


async def test_a_configured_provider_takes_the_payments(shop, clients, token) -> None:  # noqa: F811 - the fixture imported above
    rid = await hold_for(shop, clients, token, "alice")
    status, data = await post(shop["server"].url, token("viewer", "b1", "alice"), body(shop["sale"], rid))
    assert status == 201 and data["order"]["state"] == "PAID"
    provider = shop["server"].app["node"].checkout.provider
    assert isinstance(provider, RecordingProvider)
    assert provider.asked == [(f"{shop['sale']}:{rid}:1", 12900, "KRW")]
