"""The shop's data: locations, products, variants, inventory items and inventory levels.

Shaped like Shopify's inventory model: every variant has one inventory item; an item is
stocked at a location through an inventory level, which holds named quantities. `on_hand` is
not stored: it is the sum of the states that physically sit in the building
(available + committed + reserved + damaged + safety_stock + quality_control); `incoming` is
not part of it. Not locked itself: the owning store's lock guards every access.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..clock import iso

DEFAULT_LOCATION_NAME = "Shop location"
DEFAULT_VARIANT_TITLE = "Default Title"
# States that make up on_hand, and the ones an app may read by name.
ON_HAND_STATES = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")
QUANTITY_NAMES = (*ON_HAND_STATES, "incoming", "on_hand")
CENTS = Decimal("0.01")

# Realistically large ids (Shopify's are 10-14 digits), yet below 2**53 so JSON clients that
# read numbers as doubles still get them exactly.
ID_BASES = {
    "Location": 78_000_000_000,
    "Product": 9_000_000_000_000,
    "ProductVariant": 47_000_000_000_000,
    "InventoryItem": 49_000_000_000_000,
    "InventoryLevel": 155_000_000_000,
    "InventoryAdjustmentGroup": 61_000_000_000_000,
    "Metafield": 25_000_000_000_000,
    "MediaImage": 31_000_000_000_000,
    "BulkOperation": 4_400_000_000_000,
}


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


GID = re.compile(r"gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>\d+)(?:\?(?P<query>.*))?")


def parse_gid(text: Any, kind: str | None = None) -> tuple[str, int] | None:
    """`("ProductVariant", 123)` from `gid://shopify/ProductVariant/123`; None if malformed or of another kind."""
    if not isinstance(text, str):
        return None
    match = GID.fullmatch(text)
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    return match["kind"], int(match["id"])


def money(value: str | Decimal) -> str:
    """A price as Shopify prints it back: two decimals ("12.5" -> "12.50")."""
    return str(Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP))


def iso_timestamp(timestamp: float) -> str:
    """A DateTime as the Admin API prints it: UTC, whole seconds, `Z`."""
    return iso(int(timestamp)).replace("+00:00", "Z")


@dataclass
class Location:
    id: int
    name: str
    created_at: float
    is_primary: bool = False


@dataclass
class Metafield:
    id: int
    namespace: str
    key: str
    type: str
    value: str
    created_at: float
    updated_at: float


@dataclass
class MediaImage:
    id: int
    source: str
    alt: str
    created_at: float


@dataclass
class Product:
    id: int
    title: str
    handle: str
    created_at: float
    updated_at: float
    variant_ids: list[int] = field(default_factory=list)
    # Content, written by productUpdate / productSet (directly or through a bulk operation).
    description_html: str = ""
    metafields: dict[tuple[str, str], Metafield] = field(default_factory=dict)
    media: list[MediaImage] = field(default_factory=list)


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    price: str
    compare_at_price: str | None
    inventory_item_id: int
    created_at: float
    updated_at: float
    title: str = DEFAULT_VARIANT_TITLE
    barcode: str | None = None
    taxable: bool = True
    position: int = 1
    # Price and quantity writes the API accepted for this SKU (the control API's `writes`).
    writes: int = 0


@dataclass
class InventoryItem:
    id: int
    variant_id: int
    created_at: float
    updated_at: float
    tracked: bool = True


@dataclass
class InventoryLevel:
    id: int
    item_id: int
    location_id: int
    created_at: float
    updated_at: float
    states: dict[str, int] = field(default_factory=lambda: {name: 0 for name in (*ON_HAND_STATES, "incoming")})

    @property
    def on_hand(self) -> int:
        return sum(self.states[name] for name in ON_HAND_STATES)

    def quantity(self, name: str) -> int:
        return self.on_hand if name == "on_hand" else self.states[name]

    def set_quantity(self, name: str, value: int) -> None:
        """Set a named quantity; setting on_hand moves the difference into available, as Shopify does."""
        if name == "on_hand":
            self.states["available"] += value - self.on_hand
        else:
            self.states[name] = value


class Catalog:
    """Everything the shop sells, with the indexes the API needs to find it."""

    def __init__(self, now: float) -> None:
        self._ids = {kind: itertools.count(base + 1) for kind, base in ID_BASES.items()}
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple[int, int], InventoryLevel] = {}
        # Indexes, so reads stay fast in a shop of tens of thousands of SKUs.
        self._variant_by_sku: dict[str, int] = {}
        self._variants_by_folded_sku: dict[str, list[int]] = {}
        self._levels_by_item: dict[int, list[InventoryLevel]] = {}
        self._levels_by_location: dict[int, list[InventoryLevel]] = {}
        self._level_by_id: dict[int, InventoryLevel] = {}
        self._products_by_handle: dict[str, Product] = {}  # products seeded by handle (`product`)
        self.add_location(DEFAULT_LOCATION_NAME, now)

    def next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    # --- locations ------------------------------------------------------------------------

    def add_location(self, name: str, now: float) -> Location:
        location = Location(self.next_id("Location"), name, now, is_primary=not self.locations)
        self.locations[location.id] = location
        return location

    def ensure_locations(self, names: list[str], now: float) -> None:
        """Make sure locations with these names exist (in this order after the primary one)."""
        known = {location.name for location in self.locations.values()}
        for name in names:
            if name not in known:
                self.add_location(name, now)
                known.add(name)

    @property
    def primary_location(self) -> Location:
        return next(iter(self.locations.values()))

    # --- lookups --------------------------------------------------------------------------

    def variant_by_sku(self, sku: str) -> Variant | None:
        variant_id = self._variant_by_sku.get(sku)
        return self.variants.get(variant_id) if variant_id is not None else None

    def level(self, item_id: int, location_id: int) -> InventoryLevel | None:
        return self.levels.get((item_id, location_id))

    def variants_with_sku(self, sku: str) -> list[Variant]:
        """Variants whose SKU equals `sku` ignoring case, as Shopify's search matches it."""
        return [self.variants[variant_id] for variant_id in self._variants_by_folded_sku.get(sku.casefold(), ())]

    def levels_of_item(self, item_id: int) -> list[InventoryLevel]:
        return list(self._levels_by_item.get(item_id, ()))

    def levels_at(self, location_id: int) -> list[InventoryLevel]:
        return list(self._levels_by_location.get(location_id, ()))

    def level_by_id(self, level_id: int) -> InventoryLevel | None:
        return self._level_by_id.get(level_id)

    def variants_in_order(self) -> Iterator[Variant]:
        # Ids only grow and dicts keep insertion order, so this is id order.
        return iter(self.variants.values())

    def available(self, variant: Variant) -> int:
        return sum(level.states["available"] for level in self.levels_of_item(variant.inventory_item_id))

    # --- merchant edits (the control API) -------------------------------------------------

    def upsert_item(self, sku: str, values: dict[str, Any], now: float) -> Variant:
        """Create the product, variant, inventory item and level a SKU needs, or overwrite them.

        A new SKU with `values["product"]` (a handle) becomes one more variant of the product
        with that handle (created on first use), as a shop holds sizes or colours of one
        product; without it, the SKU gets a product of its own.
        """
        variant = self.variant_by_sku(sku)
        if variant is None:
            variant = self._create_item(sku, values.get("title") or sku, now, handle=values.get("product"))
        product = self.products[variant.product_id]
        if values.get("title") is not None:
            product.title = values["title"]
            product.updated_at = now
        if values.get("price") is not None:
            variant.price = money(values["price"])
        if "compare_at_price" in values:
            variant.compare_at_price = (
                money(values["compare_at_price"]) if values["compare_at_price"] is not None else None
            )
        if values.get("available") is not None:
            level = self.level(variant.inventory_item_id, self.primary_location.id)
            if level is None:
                level = self.stock_at(variant.inventory_item_id, self.primary_location.id, now)
            level.states["available"] = values["available"]
            level.updated_at = now
        variant.updated_at = now
        return variant

    def stock_at(self, item_id: int, location_id: int, now: float) -> InventoryLevel:
        level = InventoryLevel(self.next_id("InventoryLevel"), item_id, location_id, now, now)
        self.levels[(item_id, location_id)] = level
        self._levels_by_item.setdefault(item_id, []).append(level)
        self._levels_by_location.setdefault(location_id, []).append(level)
        self._level_by_id[level.id] = level
        return level

    def _create_item(self, sku: str, title: str, now: float, *, handle: str | None = None) -> Variant:
        product = self._products_by_handle.get(handle) if handle else None
        if product is None:
            product = Product(self.next_id("Product"), title, handle or _handle(title), now, now)
            self.products[product.id] = product
            if handle:
                self._products_by_handle[handle] = product
        variant = Variant(
            id=self.next_id("ProductVariant"),
            product_id=product.id,
            sku=sku,
            price="0.00",
            compare_at_price=None,
            inventory_item_id=self.next_id("InventoryItem"),
            created_at=now,
            updated_at=now,
            # A product's only variant is "Default Title" in Shopify; more of them are named.
            title=DEFAULT_VARIANT_TITLE if handle is None else sku,
            position=len(product.variant_ids) + 1,
        )
        product.variant_ids.append(variant.id)
        self.variants[variant.id] = variant
        self.items[variant.inventory_item_id] = InventoryItem(variant.inventory_item_id, variant.id, now, now)
        self._variant_by_sku[sku] = variant.id
        self._variants_by_folded_sku.setdefault(sku.casefold(), []).append(variant.id)
        self.stock_at(variant.inventory_item_id, self.primary_location.id, now)
        return variant

    # --- the control API's view -----------------------------------------------------------

    def item_view(self, variant: Variant) -> dict[str, Any]:
        product = self.products[variant.product_id]
        levels = self.levels_of_item(variant.inventory_item_id)
        updated_at = max([variant.updated_at, *(level.updated_at for level in levels)])
        return {
            "sku": variant.sku,
            "price": variant.price,
            "available": sum(level.states["available"] for level in levels),
            "title": product.title,
            "description_html": product.description_html,
            "metafields": {f"{ns}.{key}": metafield.value for (ns, key), metafield in product.metafields.items()},
            "media": [image.source for image in product.media],
            "updated_at": iso(updated_at),
            "writes": variant.writes,
            "compare_at_price": variant.compare_at_price,
            "on_hand": sum(level.on_hand for level in levels),
            "product_id": gid("Product", product.id),
            "variant_id": gid("ProductVariant", variant.id),
            "inventory_item_id": gid("InventoryItem", variant.inventory_item_id),
            "levels": [
                {
                    "location_id": gid("Location", level.location_id),
                    "location_name": self.locations[level.location_id].name,
                    "available": level.states["available"],
                    "committed": level.states["committed"],
                    "on_hand": level.on_hand,
                }
                for level in levels
            ],
        }


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"
