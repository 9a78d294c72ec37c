"""Reads: SKUs to the shop's ids (with price and stock when asked), and stock by inventory item.

Every read is sized so one document stays under the shop's single-query cost limit and the
250-element input limit, and is split in halves if Shopify still finds it too expensive.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .client import ShopifyClient
from .cost import linear_capacity, requested_cost
from .documents import INVENTORY_LEVELS, VARIANTS_BY_SKU, VARIANTS_BY_SKU_WITH_STOCK
from .errors import MaxCostExceeded

INPUT_LIMIT = 250  # Shopify: input arrays and `first` hold at most 250 elements
_PLAIN_NAME = re.compile(r"^[^\s:\\()\"'*]+$")


@dataclass(frozen=True)
class Level:
    """The `available` quantity of one inventory item at the location; `stocked=False` when
    the item is not stocked there at all (no inventory level)."""

    stocked: bool
    available: int | None = None


@dataclass(frozen=True)
class Variant:
    sku: str
    variant_id: str
    product_id: str
    inventory_item_id: str
    price: Decimal | None = None
    level: Level | None = None  # when read with stock

    def external_ids(self, location_id: str | None = None) -> dict:
        ids = {"variant_id": self.variant_id, "product_id": self.product_id, "inventory_item_id": self.inventory_item_id}
        if location_id:
            ids["location_id"] = location_id
        return ids


@dataclass(frozen=True)
class Lookup:
    """The shop's answer for a set of SKUs. `unsure` SKUs could not be told apart from a
    truncated answer (more matches than asked for); they are neither found nor missing."""

    found: dict[str, Variant] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()
    duplicated: frozenset[str] = frozenset()
    unsure: frozenset[str] = frozenset()


def sku_search(skus: Sequence[str]) -> str:
    """Shopify search syntax matching any of `skus`: `sku:A-1 OR sku:"B 2"`.

    A SKU is written bare when it is a plain search name: no whitespace, quotes, special
    characters (colon, backslash, parentheses) or `*` (a prefix search), no leading `-`
    (negation) or comparator, not a connective. Otherwise it is quoted, backslash and double
    quote escaped.
    """
    def value(sku: str) -> str:
        if _PLAIN_NAME.match(sku) and sku[0] not in "-<>=" and sku.upper() not in ("AND", "OR", "NOT"):
            return sku
        return '"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return " OR ".join(f"sku:{value(sku)}" for sku in skus)


def variants_by_sku(
    client: ShopifyClient, skus: Sequence[str], *, location_id: str | None = None, max_cost: int, batch: int,
    document: str | None = None, then: int = 0,
) -> Lookup:
    """Look SKUs up, `batch` at most per query; with `location_id`, read price and stock too.

    A query asks for one variant more than it names SKUs, so a SKU held by two variants shows
    as a truncated answer instead of hiding another SKU's match. After a truncated answer the
    SKUs not already proven duplicated are asked once more, one per query, which settles them.
    """
    # `document`: a slimmer read of the same shape (`PRODUCT_IDS_BY_SKU`), when fewer ids will do.
    # `then`: the cost of the write each read is for (see `ShopifyClient.execute`).
    document = document or (VARIANTS_BY_SKU_WITH_STOCK if location_id else VARIANTS_BY_SKU)

    def variables(chunk: Sequence[str]) -> dict:
        values = {"first": len(chunk) + 1, "query": sku_search(chunk)}
        if location_id:
            values["locationId"] = location_id
        return values

    per_query = linear_capacity(
        lambda n: requested_cost(document, {"first": n + 1, "query": "", "locationId": location_id}),
        max_cost, min(batch, INPUT_LIMIT - 1),
    )
    found: dict[str, Variant] = {}
    duplicated: set[str] = set()
    missing: set[str] = set()
    unsure: set[str] = set()
    queue = [(chunk, True) for chunk in _chunks(list(dict.fromkeys(skus)), per_query)]
    while queue:
        chunk, first_look = queue.pop(0)
        nodes, truncated = _split_on_max_cost(
            lambda part: _variants_page(client, document, variables(part), then), chunk, _merge_pages
        )
        asked = set(chunk)
        matches: dict[str, list[Variant]] = {}
        for node in nodes:
            variant = _variant(node, with_stock=bool(location_id))
            if variant.sku in asked:
                matches.setdefault(variant.sku, []).append(variant)
        for sku in chunk:
            variants = matches.get(sku, [])
            if len(variants) > 1:
                duplicated.add(sku)
                found[sku] = variants[0]
            elif truncated and first_look and len(chunk) > 1:
                queue.append(([sku], False))  # alone, its answer cannot be crowded out
            elif variants:
                found[sku] = variants[0]
            elif truncated:
                unsure.add(sku)  # a lone SKU's answer filled with other (near) matches
            else:
                missing.add(sku)
    return Lookup(found, frozenset(missing), frozenset(duplicated), frozenset(unsure))


def levels_by_item(
    client: ShopifyClient, item_ids: Sequence[str], *, location_id: str, max_cost: int, then: int = 0,
) -> dict[str, Level]:
    """`available` at the location per inventory item id; ids the shop no longer has are absent.
    `then`: the cost of the write the levels are read for, sent only when the bucket holds both
    (see `ShopifyClient.execute`)."""
    per_query = linear_capacity(
        lambda n: requested_cost(INVENTORY_LEVELS, {"ids": ["x"] * n, "locationId": location_id}), max_cost, INPUT_LIMIT
    )
    levels: dict[str, Level] = {}
    for chunk in _chunks(list(dict.fromkeys(item_ids)), per_query):
        nodes = _split_on_max_cost(
            lambda part: client.execute(
                INVENTORY_LEVELS, {"ids": list(part), "locationId": location_id}, then=then
            ).field("nodes"),
            chunk, lambda pages: [node for page in pages for node in page],
        )
        for node in nodes:
            if node and node.get("id"):
                levels[node["id"]] = _level(node.get("inventoryLevel"))
    return levels


def _variants_page(client: ShopifyClient, document: str, variables: dict, then: int = 0) -> tuple[list[dict], bool]:
    connection = client.execute(document, variables, then=then).field("productVariants")
    return connection.get("nodes") or [], bool((connection.get("pageInfo") or {}).get("hasNextPage"))


def _merge_pages(pages: list[tuple[list[dict], bool]]) -> tuple[list[dict], bool]:
    return [node for nodes, _ in pages for node in nodes], any(truncated for _, truncated in pages)


def _split_on_max_cost(send: Callable, chunk: list, merge: Callable):
    """`send(chunk)`, or its halves (recursively) when Shopify finds the chunk too expensive."""
    try:
        return send(chunk)
    except MaxCostExceeded:
        if len(chunk) < 2:
            raise
        middle = len(chunk) // 2
        return merge([_split_on_max_cost(send, chunk[:middle], merge), _split_on_max_cost(send, chunk[middle:], merge)])


def _variant(node: dict, *, with_stock: bool) -> Variant:
    item = node.get("inventoryItem") or {}
    return Variant(
        sku=node.get("sku") or "",
        variant_id=node["id"],
        product_id=(node.get("product") or {}).get("id", ""),
        inventory_item_id=item.get("id", ""),
        price=_decimal(node.get("price")),
        level=_level(item.get("inventoryLevel")) if with_stock else None,
    )


def _level(level: dict | None) -> Level:
    if level is None:
        return Level(stocked=False)
    for quantity in level.get("quantities") or ():
        if quantity.get("name") == "available":
            return Level(stocked=True, available=int(quantity["quantity"]))
    return Level(stocked=True, available=None)


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _chunks(values: list, size: int) -> list[list]:
    return [values[start:start + size] for start in range(0, len(values), size)]
