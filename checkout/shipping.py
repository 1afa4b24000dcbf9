"""Where an order goes when its product ships: a recipient, a phone and an address whose required
parts and postal-code shape depend on the country (Korean addresses included: a 5-digit postal code,
the road-name address as `line1`, the detail - building, unit - as `line2`; region and city are
part of the Korean road address, so they are optional there).

`validate_shipping(data, required)` returns the cleaned dict (empty when not required and not
given) or raises ShippingInvalid(field="shipping.<part>", message), which checkout answers as
422 VALIDATION with that field."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.validate import Invalid


class ShippingInvalid(Invalid):
    """A shipping field that fails its check: VALIDATION with `field: "shipping.<part>"`."""

FIELDS = ("name", "phone", "country", "postal_code", "region", "city", "line1", "line2")
LIMITS = {"name": 100, "phone": 20, "country": 2, "postal_code": 12, "region": 100, "city": 100, "line1": 200, "line2": 200}
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Rules:
    postal: str | None  # regex a postal code must match; None = optional, any 2-12 of [A-Za-z0-9 -]
    required: tuple[str, ...]  # parts beyond name, phone, country, line1


COUNTRIES = {
    "KR": Rules(r"^\d{5}$", ("postal_code",)),
    "US": Rules(r"^\d{5}(-\d{4})?$", ("postal_code", "city", "region")),
    "JP": Rules(r"^\d{3}-?\d{4}$", ("postal_code", "region", "city")),
    "CA": Rules(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$", ("postal_code", "city", "region")),
    "GB": Rules(r"^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$", ("postal_code", "city")),
    "DE": Rules(r"^\d{5}$", ("postal_code", "city")),
    "FR": Rules(r"^\d{5}$", ("postal_code", "city")),
    "AU": Rules(r"^\d{4}$", ("postal_code", "city", "region")),
    "CN": Rules(r"^\d{6}$", ("postal_code", "region", "city")),
    "TW": Rules(r"^\d{3}(\d{2,3})?$", ("postal_code", "city")),
    "SG": Rules(r"^\d{6}$", ("postal_code",)),
}
DEFAULT = Rules(None, ("city",))
_ANY_POSTAL = re.compile(r"^[A-Za-z0-9 -]{2,12}$")


def _bad(part: str, message: str) -> ShippingInvalid:
    return ShippingInvalid(f"shipping.{part}", message)


def validate_shipping(data: Any, *, required: bool) -> dict[str, str]:
    if data is None or data == {}:
        if required:
            raise ShippingInvalid("shipping", "this product ships: a shipping address is required")
        return {}
    if not isinstance(data, dict):
        raise ShippingInvalid("shipping", "shipping must be an object")
    extra = set(data) - set(FIELDS)
    if extra:
        raise ShippingInvalid("shipping", f"unknown shipping fields: {sorted(extra)}")
    out: dict[str, str] = {}
    for part in FIELDS:
        v = data.get(part)
        if v is None or v == "":
            continue
        if not isinstance(v, str) or len(v) > LIMITS[part] or not v.strip() or not v.isprintable():
            raise _bad(part, f"shipping.{part} must be text of at most {LIMITS[part]} characters")
        out[part] = " ".join(v.split())
    country = out.get("country", "").upper()
    if not _COUNTRY.match(country):
        raise _bad("country", "shipping.country must be an ISO 3166-1 alpha-2 code such as KR or US")
    out["country"] = country
    rules = COUNTRIES.get(country, DEFAULT)
    for part in ("name", "phone", "line1", *rules.required):
        if part not in out:
            raise _bad(part, f"shipping.{part} is required for {country}")
    if not _PHONE.match(out["phone"]):
        raise _bad("phone", "shipping.phone is not a phone number")
    postal = out.get("postal_code")
    if postal is not None:
        if rules.postal is not None:
            if not re.match(rules.postal, postal):
                raise _bad("postal_code", f"shipping.postal_code is not a {country} postal code")
        elif not _ANY_POSTAL.match(postal):
            raise _bad("postal_code", "shipping.postal_code is not a postal code")
    if country in ("CA", "GB") and postal:
        out["postal_code"] = postal.upper()
    return out
