"""The catalog as GraphQL objects: what the field resolver reads for each Admin API type.

Each view exposes a GraphQL field as a method of the same name in snake_case (`compareAtPrice`
is `compare_at_price`), called with the field's arguments, also in snake_case. A field a view
does not define resolves to null: valid against the schema, just not emulated. Connections
are plain dicts (`edges`, `nodes`, `pageInfo`), paginated with Shopify-style opaque cursors.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import errors
from .catalog import (
    QUANTITY_NAMES,
    Catalog,
    InventoryItem,
    InventoryLevel,
    Location,
    MediaImage,
    Metafield,
    Product,
    Variant,
    gid,
    iso_timestamp,
    parse_gid,
)
from .search import compile_query, exact_values

MAX_PAGE_SIZE = 250
# Metafields named by key alone live in the app's reserved namespace (`$app`), as in Shopify.
APP_NAMESPACE = "$app"
TAGS = re.compile(r"<[^>]*>")


@dataclass
class Shop:
    """What every view needs: the catalog and the shop's own facts."""

    catalog: Catalog
    name: str
    domain: str
    currency: str
    shop_id: int
    # The shop's bulk operations (`bulk.BulkOperations`); `node(id:)` finds them through it.
    bulk: Any = None


# --- adjustment groups (the result of an inventory mutation) ------------------------------


@dataclass(frozen=True)
class QuantityChange:
    name: str
    delta: int
    quantity_after_change: int
    item_id: int
    location_id: int
    ledger_document_uri: str | None = None


@dataclass(frozen=True)
class AdjustmentGroup:
    id: int
    created_at: float
    reason: str
    reference_document_uri: str | None
    changes: tuple[QuantityChange, ...] = field(default_factory=tuple)


# --- pagination ---------------------------------------------------------------------------


def encode_cursor(record_id: int) -> str:
    return base64.b64encode(
        json.dumps({"last_id": record_id, "last_value": str(record_id)}, separators=(",", ":")).encode()
    ).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor.encode(), validate=True))["last_id"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("Invalid cursor for current pagination sort.") from None


def connection(
    records: Sequence[Any],
    to_node: Callable[[Any], Any],
    *,
    field_name: str,
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
    reverse: bool = False,
) -> dict[str, Any]:
    """One page of `records` (each with an integer `.id`, sorted by it) as a Relay connection."""
    if first is None and last is None:
        raise errors.bad_request("you must provide one of first or last")
    if first is not None and last is not None:
        raise errors.bad_request("providing both first and last is not supported")
    for argument, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise errors.field_error(
                f"Argument '{argument}' on Field '{field_name}' has an invalid value ({size}). "
                f"Expected a page size from 0 to {MAX_PAGE_SIZE}.",
                "argumentLiteralsIncompatible",
            )
    ordered = list(reversed(records)) if reverse else list(records)
    start, stop = 0, len(ordered)
    if after is not None:
        after_id = decode_cursor(after)
        start = next((index + 1 for index, record in enumerate(ordered) if record.id == after_id), len(ordered))
    if before is not None:
        before_id = decode_cursor(before)
        stop = next((index for index, record in enumerate(ordered) if record.id == before_id), stop)
    window = ordered[start:stop]
    if first is not None:
        page, has_next, has_previous = window[:first], len(window) > first, start > 0
    else:
        assert last is not None
        page = window[max(len(window) - last, 0) :]
        has_next, has_previous = stop < len(ordered), len(window) > last
    cursors = [encode_cursor(record.id) for record in page]
    nodes = [to_node(record) for record in page]
    return {
        "edges": [{"cursor": cursor, "node": node} for cursor, node in zip(cursors, nodes)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def count(value: int) -> dict[str, Any]:
    return {"count": value, "precision": "EXACT"}


# --- views ----------------------------------------------------------------------------------


class View:
    """A catalog record as one GraphQL object type."""

    graphql_type: ClassVar[str] = ""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    @property
    def catalog(self) -> Catalog:
        return self.shop.catalog


class ProductView(View):
    graphql_type = "Product"

    def __init__(self, shop: Shop, product: Product) -> None:
        super().__init__(shop)
        self.product = product

    def id(self) -> str:
        return gid("Product", self.product.id)

    def legacy_resource_id(self) -> str:
        return str(self.product.id)

    def title(self) -> str:
        return self.product.title

    def handle(self) -> str:
        return self.product.handle

    def status(self) -> str:
        return "ACTIVE"

    def vendor(self) -> str:
        return self.shop.name

    def product_type(self) -> str:
        return ""

    def tags(self) -> list[str]:
        return []

    def description(self, truncate_at: int | None = None) -> str:
        text = html.unescape(TAGS.sub("", self.product.description_html)).strip()
        return text[:truncate_at] if truncate_at is not None else text

    def description_html(self) -> str:
        return self.product.description_html

    def metafield(self, key: str, namespace: str | None = None) -> MetafieldView | None:
        if namespace is None and "." in key:  # `key: "custom.material"` names both
            namespace, key = key.split(".", 1)
        found = self.product.metafields.get((namespace or APP_NAMESPACE, key))
        return MetafieldView(self.shop, found, self) if found else None

    def metafields(self, namespace: str | None = None, keys: list[str] | None = None, **arguments: Any) -> dict[str, Any]:
        records = sorted(
            (
                metafield
                for metafield in self.product.metafields.values()
                if (namespace is None or metafield.namespace == namespace)
                and (keys is None or f"{metafield.namespace}.{metafield.key}" in keys)
            ),
            key=lambda metafield: metafield.id,
        )
        return connection(
            records, lambda metafield: MetafieldView(self.shop, metafield, self), field_name="metafields", **_page(arguments)
        )

    def media(self, **arguments: Any) -> dict[str, Any]:
        return connection(
            self.product.media, lambda image: MediaImageView(self.shop, image), field_name="media", **_page(arguments)
        )

    def media_count(self, **_: Any) -> dict[str, Any]:
        return count(len(self.product.media))

    def created_at(self) -> str:
        return iso_timestamp(self.product.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.product.updated_at)

    def tracks_inventory(self) -> bool:
        return True

    def has_only_default_variant(self) -> bool:
        return len(self.product.variant_ids) == 1

    def has_out_of_stock_variants(self) -> bool:
        return any(self.catalog.available(variant) <= 0 for variant in self._variants())

    def total_inventory(self) -> int:
        return sum(self.catalog.available(variant) for variant in self._variants())

    def variants_count(self, **_: Any) -> dict[str, Any]:
        return count(len(self.product.variant_ids))

    def variants(self, **arguments: Any) -> dict[str, Any]:
        return connection(
            self._variants(), lambda variant: VariantView(self.shop, variant), field_name="variants", **_page(arguments)
        )

    def _variants(self) -> list[Variant]:
        return [self.catalog.variants[variant_id] for variant_id in sorted(self.product.variant_ids)]


class MetafieldView(View):
    graphql_type = "Metafield"

    def __init__(self, shop: Shop, metafield: Metafield, owner: View) -> None:
        super().__init__(shop)
        self.metafield = metafield
        self._owner = owner

    def id(self) -> str:
        return gid("Metafield", self.metafield.id)

    def legacy_resource_id(self) -> str:
        return str(self.metafield.id)

    def namespace(self) -> str:
        return self.metafield.namespace

    def key(self) -> str:
        return self.metafield.key

    def type(self) -> str:
        return self.metafield.type

    def value(self) -> str:
        return self.metafield.value

    def json_value(self) -> Any:
        try:
            return json.loads(self.metafield.value)
        except ValueError:
            return self.metafield.value

    def owner_type(self) -> str:
        return "PRODUCT"

    def owner(self) -> View:
        return self._owner

    def compare_digest(self) -> str:
        return base64.b64encode(f"{self.metafield.id}:{self.metafield.updated_at}".encode()).decode()

    def created_at(self) -> str:
        return iso_timestamp(self.metafield.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.metafield.updated_at)


class MediaImageView(View):
    graphql_type = "MediaImage"

    def __init__(self, shop: Shop, image: MediaImage) -> None:
        super().__init__(shop)
        self.image_record = image

    def id(self) -> str:
        return gid("MediaImage", self.image_record.id)

    def alt(self) -> str:
        return self.image_record.alt

    def media_content_type(self) -> str:
        return "IMAGE"

    def status(self) -> str:
        return "READY"

    def created_at(self) -> str:
        return iso_timestamp(self.image_record.created_at)

    def image(self) -> dict[str, Any]:
        return {"url": self.image_record.source, "altText": self.image_record.alt, "id": self.id()}

    def preview(self) -> dict[str, Any]:
        return {"image": self.image(), "status": "READY"}


class VariantView(View):
    graphql_type = "ProductVariant"

    def __init__(self, shop: Shop, variant: Variant) -> None:
        super().__init__(shop)
        self.variant = variant

    def id(self) -> str:
        return gid("ProductVariant", self.variant.id)

    def legacy_resource_id(self) -> str:
        return str(self.variant.id)

    def sku(self) -> str:
        return self.variant.sku

    def price(self) -> str:
        return self.variant.price

    def compare_at_price(self) -> str | None:
        return self.variant.compare_at_price

    def title(self) -> str:
        return self.variant.title

    def display_name(self) -> str:
        return f"{self.catalog.products[self.variant.product_id].title} - {self.variant.title}"

    def barcode(self) -> str | None:
        return self.variant.barcode

    def taxable(self) -> bool:
        return self.variant.taxable

    def position(self) -> int:
        return self.variant.position

    def inventory_policy(self) -> str:
        return "DENY"

    def available_for_sale(self) -> bool:
        return self.catalog.available(self.variant) > 0

    def inventory_quantity(self) -> int:
        return self.catalog.available(self.variant)

    def sellable_online_quantity(self) -> int:
        return max(self.catalog.available(self.variant), 0)

    def requires_components(self) -> bool:
        return False

    def created_at(self) -> str:
        return iso_timestamp(self.variant.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.variant.updated_at)

    def product(self) -> ProductView:
        return ProductView(self.shop, self.catalog.products[self.variant.product_id])

    def inventory_item(self) -> InventoryItemView:
        return InventoryItemView(self.shop, self.catalog.items[self.variant.inventory_item_id])


class InventoryItemView(View):
    graphql_type = "InventoryItem"

    def __init__(self, shop: Shop, item: InventoryItem) -> None:
        super().__init__(shop)
        self.item = item

    def id(self) -> str:
        return gid("InventoryItem", self.item.id)

    def legacy_resource_id(self) -> str:
        return str(self.item.id)

    def sku(self) -> str:
        return self.catalog.variants[self.item.variant_id].sku

    def tracked(self) -> bool:
        return self.item.tracked

    def requires_shipping(self) -> bool:
        return True

    def duplicate_sku_count(self) -> int:
        return 0

    def created_at(self) -> str:
        return iso_timestamp(self.item.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.item.updated_at)

    def variant(self) -> VariantView:
        return VariantView(self.shop, self.catalog.variants[self.item.variant_id])

    def locations_count(self, **_: Any) -> dict[str, Any]:
        return count(len(self.catalog.levels_of_item(self.item.id)))

    def inventory_level(self, location_id: str) -> InventoryLevelView | None:
        parsed = parse_gid(location_id, "Location")
        level = self.catalog.level(self.item.id, parsed[1]) if parsed else None
        return InventoryLevelView(self.shop, level) if level else None

    def inventory_levels(self, **arguments: Any) -> dict[str, Any]:
        levels = sorted(self.catalog.levels_of_item(self.item.id), key=lambda level: level.id)
        return connection(
            levels, lambda level: InventoryLevelView(self.shop, level), field_name="inventoryLevels", **_page(arguments)
        )


class InventoryLevelView(View):
    graphql_type = "InventoryLevel"

    def __init__(self, shop: Shop, level: InventoryLevel) -> None:
        super().__init__(shop)
        self.level = level

    def id(self) -> str:
        return f"{gid('InventoryLevel', self.level.id)}?inventory_item_id={self.level.item_id}"

    def can_deactivate(self) -> bool:
        return True

    def created_at(self) -> str:
        return iso_timestamp(self.level.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.level.updated_at)

    def item(self) -> InventoryItemView:
        return InventoryItemView(self.shop, self.catalog.items[self.level.item_id])

    def location(self) -> LocationView:
        return LocationView(self.shop, self.catalog.locations[self.level.location_id])

    def quantities(self, names: list[str]) -> list[dict[str, Any]]:
        unknown = [name for name in names if name not in QUANTITY_NAMES]
        if unknown:
            # InventoryQuantityName is a string checked at run time, not an enum (seen live);
            # the wording here is ours.
            raise errors.bad_request(
                f"Invalid quantity name(s): {', '.join(unknown)}. Valid names: {', '.join(QUANTITY_NAMES)}."
            )
        return [
            {
                "id": f"{gid('InventoryQuantity', self.level.id)}?inventory_item_id={self.level.item_id}&name={name}",
                "name": name,
                "quantity": self.level.quantity(name),
                "updatedAt": iso_timestamp(self.level.updated_at),
            }
            for name in names
        ]


class LocationView(View):
    graphql_type = "Location"

    def __init__(self, shop: Shop, location: Location) -> None:
        super().__init__(shop)
        self.location = location

    def id(self) -> str:
        return gid("Location", self.location.id)

    def legacy_resource_id(self) -> str:
        return str(self.location.id)

    def name(self) -> str:
        return self.location.name

    def is_active(self) -> bool:
        return True

    def activatable(self) -> bool:
        return True

    def deactivatable(self) -> bool:
        return not self.location.is_primary

    def deletable(self) -> bool:
        return False

    def address_verified(self) -> bool:
        return True

    def fulfills_online_orders(self) -> bool:
        return True

    def has_active_inventory(self) -> bool:
        return bool(self.catalog.levels_at(self.location.id))

    def has_unfulfilled_orders(self) -> bool:
        return False

    def is_fulfillment_service(self) -> bool:
        return False

    def is_primary(self) -> bool:
        return self.location.is_primary

    def ships_inventory(self) -> bool:
        return True

    def suggested_addresses(self) -> list[Any]:
        return []

    def created_at(self) -> str:
        return iso_timestamp(self.location.created_at)

    def updated_at(self) -> str:
        return iso_timestamp(self.location.created_at)

    def address(self) -> dict[str, Any]:
        return {
            "address1": "1 Sandbox Street",
            "address2": None,
            "city": "Ottawa",
            "country": "Canada",
            "countryCode": "CA",
            "formatted": ["1 Sandbox Street", "Ottawa ON K1A 0A1", "Canada"],
            "latitude": None,
            "longitude": None,
            "phone": None,
            "province": "Ontario",
            "provinceCode": "ON",
            "zip": "K1A 0A1",
        }

    def inventory_level(self, inventory_item_id: str) -> InventoryLevelView | None:
        parsed = parse_gid(inventory_item_id, "InventoryItem")
        level = self.catalog.level(parsed[1], self.location.id) if parsed else None
        return InventoryLevelView(self.shop, level) if level else None

    def inventory_levels(self, **arguments: Any) -> dict[str, Any]:
        levels = sorted(self.catalog.levels_at(self.location.id), key=lambda level: level.id)
        return connection(
            levels, lambda level: InventoryLevelView(self.shop, level), field_name="inventoryLevels", **_page(arguments)
        )


class ShopView(View):
    graphql_type = "Shop"

    def id(self) -> str:
        return gid("Shop", self.shop.shop_id)

    def name(self) -> str:
        return self.shop.name

    def myshopify_domain(self) -> str:
        return self.shop.domain

    def url(self) -> str:
        return f"https://{self.shop.domain}"

    def email(self) -> str:
        return f"owner@{self.shop.domain}"

    def contact_email(self) -> str:
        return self.email()

    def currency_code(self) -> str:
        return self.shop.currency

    def iana_timezone(self) -> str:
        return "UTC"

    def timezone_abbreviation(self) -> str:
        return "UTC"


class AdjustmentGroupView(View):
    graphql_type = "InventoryAdjustmentGroup"

    def __init__(self, shop: Shop, group: AdjustmentGroup) -> None:
        super().__init__(shop)
        self.group = group

    def id(self) -> str:
        return gid("InventoryAdjustmentGroup", self.group.id)

    def created_at(self) -> str:
        return iso_timestamp(self.group.created_at)

    def reason(self) -> str:
        return self.group.reason

    def reference_document_uri(self) -> str | None:
        return self.group.reference_document_uri

    def changes(
        self,
        inventory_item_ids: list[str] | None = None,
        location_ids: list[str] | None = None,
        quantity_names: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        picked = []
        for change in self.group.changes:
            if inventory_item_ids is not None and gid("InventoryItem", change.item_id) not in inventory_item_ids:
                continue
            if location_ids is not None and gid("Location", change.location_id) not in location_ids:
                continue
            if quantity_names is not None and change.name not in quantity_names:
                continue
            item = self.catalog.items.get(change.item_id)
            location = self.catalog.locations.get(change.location_id)
            picked.append(
                {
                    "name": change.name,
                    "delta": change.delta,
                    "quantityAfterChange": change.quantity_after_change,
                    "ledgerDocumentUri": change.ledger_document_uri,
                    "item": InventoryItemView(self.shop, item) if item else None,
                    "location": LocationView(self.shop, location) if location else None,
                }
            )
        return picked


# --- finding things -------------------------------------------------------------------------


def node_for_gid(shop: Shop, text: str) -> View | None:
    """The object a global id names, or None when there is none (as `node`/`nodes` answer)."""
    parsed = parse_gid(text)
    if parsed is None:
        raise errors.field_error(
            f"Invalid global id '{text}'", "argumentLiteralsIncompatible", typeName="CoercionError"
        )
    kind, number = parsed
    catalog = shop.catalog
    if kind == "ProductVariant" and number in catalog.variants:
        return VariantView(shop, catalog.variants[number])
    if kind == "Product" and number in catalog.products:
        return ProductView(shop, catalog.products[number])
    if kind == "InventoryItem" and number in catalog.items:
        return InventoryItemView(shop, catalog.items[number])
    if kind == "Location" and number in catalog.locations:
        return LocationView(shop, catalog.locations[number])
    if kind == "InventoryLevel":
        level = catalog.level_by_id(number)
        return InventoryLevelView(shop, level) if level else None
    if kind == "BulkOperation" and shop.bulk is not None:
        found: View | None = shop.bulk.node(shop, number)
        return found
    return None


VARIANT_SEARCH_FIELDS = frozenset({"sku", "id", "product_id", "title", "barcode", "inventory_item_id"})
PRODUCT_SEARCH_FIELDS = frozenset({"sku", "id", "title", "handle"})
ITEM_SEARCH_FIELDS = frozenset({"sku", "id"})


def variant_record(catalog: Catalog, variant: Variant) -> dict[str, str]:
    return {
        "sku": variant.sku,
        "id": str(variant.id),
        "product_id": str(variant.product_id),
        "title": catalog.products[variant.product_id].title,
        "barcode": variant.barcode or "",
        "inventory_item_id": str(variant.inventory_item_id),
    }


def search_variants(catalog: Catalog, query: str | None) -> list[Variant]:
    skus = exact_values(query, "sku")
    if skus is not None:
        found = {variant.id: variant for sku in skus for variant in catalog.variants_with_sku(sku)}
        return [found[variant_id] for variant_id in sorted(found)]
    matches = compile_query(query, VARIANT_SEARCH_FIELDS)
    return [variant for variant in catalog.variants_in_order() if matches(variant_record(catalog, variant))]


def search_products(catalog: Catalog, query: str | None) -> list[Product]:
    matches = compile_query(query, PRODUCT_SEARCH_FIELDS)
    found = []
    for product in catalog.products.values():
        skus = [catalog.variants[variant_id].sku for variant_id in product.variant_ids]
        records = [
            {"sku": sku, "id": str(product.id), "title": product.title, "handle": product.handle}
            for sku in skus or [""]
        ]
        if any(matches(record) for record in records):
            found.append(product)
    return found


def search_items(catalog: Catalog, query: str | None) -> list[InventoryItem]:
    matches = compile_query(query, ITEM_SEARCH_FIELDS)
    return [
        item
        for item in catalog.items.values()
        if matches({"sku": catalog.variants[item.variant_id].sku, "id": str(item.id)})
    ]


def _page(arguments: dict[str, Any]) -> dict[str, Any]:
    """The pagination arguments of a connection field; others (query, sortKey) are the caller's."""
    return {name: arguments[name] for name in ("first", "last", "after", "before", "reverse") if name in arguments}
