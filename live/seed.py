"""Demo data: a small shop (products with images served by this server) and one broadcast.

Written through the hub's BroadcastStore.ensure, so seeding twice changes nothing and a host's
edits survive a restart of `hawker demo`. Images ship with the package (live/static/demo/) and
are served at /static/demo/...: the demo never loads anything from another site."""
from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from live.assets import STATIC_DIR, STATIC_PREFIX


@dataclass(frozen=True)
class DemoProduct:
    id: str
    title: str
    price: int  # minor units
    currency: str
    image: str  # file name under live/static/demo/
    description: str

    @property
    def image_url(self) -> str:
        return f"{STATIC_PREFIX}/demo/{self.image}"

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "price": self.price, "currency": self.currency,
                "image_url": self.image_url, "description": self.description, "ships": True}  # all physical goods


DEMO_TITLE = "Hawker demo shop: the Friday drop"
DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("tote", "Canvas tote bag", 1900, "EUR", "tote.svg", "Heavy cotton, inside pocket."),
    DemoProduct("mug", "Enamel camp mug", 1200, "EUR", "mug.svg", "350 ml, dishwasher safe."),
    DemoProduct("sneaker", "Court sneaker", 7900, "EUR", "sneaker.svg", "Leather upper, limited colourway."),
    DemoProduct("headphones", "Wireless headphones", 12900, "EUR", "headphones.svg", "30 h battery, fold flat."),
    DemoProduct("plant", "Pothos in a clay pot", 2400, "EUR", "plant.svg", "Easy care, 12 cm pot."),
)


def image_path(product: DemoProduct) -> str:
    return str(STATIC_DIR / "demo" / product.image)


async def seed_demo(redis: aioredis.Redis, broadcast_id: str, host_sub: str) -> None:
    """Create the demo broadcast with its products if missing; add missing products; never overwrite."""
    from shop.broadcasts import BroadcastStore

    await BroadcastStore(redis).ensure(broadcast_id, title=DEMO_TITLE, host=host_sub,
                                       products=[p.as_dict() for p in DEMO_PRODUCTS])
