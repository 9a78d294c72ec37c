"""The three writes a sync adapter makes, with Shopify's checks and user errors.

Each takes the mutation's coerced arguments and returns the payload the schema expects plus
what the store must account for (SKUs written, levels changed). The inventory mutations are
atomic: one user error and nothing is applied, as Shopify applies an adjustment group as a
whole. Error messages follow the enum descriptions of the Admin API reference; the stale
compare-and-swap message is the one recorded from a live 2026 shop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .catalog import InventoryLevel, Variant, money, parse_gid
from .versions import ApiVersion
from .views import AdjustmentGroup, AdjustmentGroupView, ProductView, QuantityChange, Shop, VariantView

# shopify.dev, "inventory quantities and states": the reasons an app may give.
INVENTORY_REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
SETTABLE_NAMES = ("available", "on_hand")
ADJUSTABLE_NAMES = ("available", "on_hand", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
SET_LIMIT = 1_000_000_000
ADJUST_LIMIT = 2_000_000_000
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")


@dataclass
class Outcome:
    """A mutation's payload and its effects on the store."""

    payload: dict[str, Any]
    failed: bool = False
    written_skus: list[str] = field(default_factory=list)
    changed_levels: list[InventoryLevel] = field(default_factory=list)


def user_error(message: str, field_path: list[str] | None, code: str) -> dict[str, Any]:
    return {"message": message, "field": field_path, "code": code}


# --- productVariantsBulkUpdate ----------------------------------------------------------------


def product_variants_bulk_update(shop: Shop, arguments: dict[str, Any], now: float) -> Outcome:
    """Update several variants of one product; per-variant user errors, partial if allowed."""
    catalog = shop.catalog
    parsed = parse_gid(arguments["productId"], "Product")
    product = catalog.products.get(parsed[1]) if parsed else None
    if product is None:
        error = user_error("Product does not exist", ["productId"], "PRODUCT_DOES_NOT_EXIST")
        return Outcome({"product": None, "productVariants": None, "userErrors": [error]}, failed=True)
    problems: list[dict[str, Any]] = []
    accepted: list[tuple[Variant, dict[str, Any]]] = []
    for index, entry in enumerate(arguments["variants"]):
        variant, entry_problems = _check_variant_input(shop, product.id, entry, ["variants", str(index)])
        if entry_problems:
            problems.extend(entry_problems)
        elif variant is not None:
            accepted.append((variant, entry))
    if problems and not arguments.get("allowPartialUpdates"):
        return Outcome({"product": None, "productVariants": None, "userErrors": problems}, failed=True)
    written: list[str] = []
    for variant, entry in accepted:
        if _apply_variant_input(variant, entry, now):
            written.append(variant.sku)
    if accepted:
        product.updated_at = now
    payload = {
        "product": ProductView(shop, product),
        "productVariants": [VariantView(shop, variant) for variant, _ in accepted],
        "userErrors": problems,
    }
    return Outcome(payload, failed=bool(problems) and not accepted, written_skus=written)


def _check_variant_input(
    shop: Shop, product_id: int, entry: dict[str, Any], where: list[str]
) -> tuple[Variant | None, list[dict[str, Any]]]:
    if entry.get("id") is None:
        return None, [
            user_error("Product variant is missing ID attribute", [*where, "id"], "PRODUCT_VARIANT_ID_MISSING")
        ]
    parsed = parse_gid(entry["id"], "ProductVariant")
    variant = shop.catalog.variants.get(parsed[1]) if parsed else None
    if variant is None:
        return None, [user_error("Product variant does not exist", [*where, "id"], "PRODUCT_VARIANT_DOES_NOT_EXIST")]
    if variant.product_id != product_id:
        return None, [user_error("Input must be for this product", [*where, "id"], "MUST_BE_FOR_THIS_PRODUCT")]
    problems = []
    if entry.get("inventoryQuantities") is not None:
        problems.append(
            user_error(
                "Inventory quantities can only be provided during create. To update inventory for existing "
                "variants, use inventoryAdjustQuantities.",
                [*where, "inventoryQuantities"],
                "NO_INVENTORY_QUANTITIES_ON_VARIANTS_UPDATE",
            )
        )
    for name in ("price", "compareAtPrice"):
        if entry.get(name) is not None and Decimal(entry[name]) < 0:
            problems.append(user_error("Price cannot take a negative value.", [*where, name], "NEGATIVE_PRICE_VALUE"))
    return variant, problems


def _apply_variant_input(variant: Variant, entry: dict[str, Any], now: float) -> bool:
    """Apply one accepted input; True when it wrote a price (what `writes` counts)."""
    wrote_price = False
    if entry.get("price") is not None:
        variant.price = money(entry["price"])
        wrote_price = True
    if "compareAtPrice" in entry:
        variant.compare_at_price = money(entry["compareAtPrice"]) if entry["compareAtPrice"] is not None else None
        wrote_price = True
    if "barcode" in entry:
        variant.barcode = entry["barcode"]
    if entry.get("taxable") is not None:
        variant.taxable = entry["taxable"]
    variant.updated_at = now
    return wrote_price


# --- inventorySetQuantities -------------------------------------------------------------------


def inventory_set_quantities(shop: Shop, arguments: dict[str, Any], version: ApiVersion, now: float) -> Outcome:
    """Set absolute quantities, compare-and-swap per quantity; all or nothing."""
    data = arguments["input"]
    name = data["name"]
    name_problem = None
    if name not in SETTABLE_NAMES:
        name_problem = user_error(
            "The quantity name must be either 'available' or 'on_hand'.", ["input", "name"], "INVALID_NAME"
        )
    problems = _common_input_problems(data, name_problem)
    planned: list[tuple[InventoryLevel, int]] = []
    seen: set[tuple[int, int]] = set()
    for index, quantity in enumerate(data["quantities"]):
        where = ["input", "quantities", str(index)]
        level, level_problems = _find_level(shop, quantity, where, "INVALID_INVENTORY_ITEM", "INVALID_LOCATION")
        problems.extend(level_problems)
        value = quantity["quantity"]
        if value > SET_LIMIT:
            problems.append(
                user_error(
                    "The total quantity can't be higher than 1,000,000,000.",
                    [*where, "quantity"],
                    "INVALID_QUANTITY_TOO_HIGH",
                )
            )
        elif value < -SET_LIMIT:
            problems.append(
                user_error(
                    "The total quantity can't be lower than -1,000,000,000.",
                    [*where, "quantity"],
                    "INVALID_QUANTITY_TOO_LOW",
                )
            )
        elif name == "on_hand" and value < 0:
            problems.append(
                user_error("The quantity can't be negative.", [*where, "quantity"], "INVALID_QUANTITY_NEGATIVE")
            )
        if level is None:
            continue
        pair = (level.item_id, level.location_id)
        if pair in seen:
            problems.append(
                user_error(
                    "The combination of inventoryItemId and locationId must be unique.",
                    where,
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                )
            )
            continue
        seen.add(pair)
        if name in SETTABLE_NAMES:
            problems.extend(_compare_problems(level.quantity(name), quantity, data, version, where))
        planned.append((level, value))
    if problems:
        return Outcome({"inventoryAdjustmentGroup": None, "userErrors": problems}, failed=True)
    changes: list[QuantityChange] = []
    for level, value in planned:
        before = {state: level.quantity(state) for state in SETTABLE_NAMES}
        level.set_quantity(name, value)
        level.updated_at = now
        # Setting one of the two moves the other by the same amount; Shopify lists both.
        for state in (name, *(other for other in SETTABLE_NAMES if other != name)):
            after = level.quantity(state)
            changes.append(QuantityChange(state, after - before[state], after, level.item_id, level.location_id))
    return _applied(shop, data, changes, [level for level, _ in planned], now)


def _compare_problems(
    current: int, quantity: dict[str, Any], data: dict[str, Any], version: ApiVersion, where: list[str]
) -> list[dict[str, Any]]:
    """The compare-and-swap check of one quantity, by the rules of the request's version."""
    if version.has_change_from_quantity and "changeFromQuantity" in quantity:
        # Any value given here, null included, overrides compareQuantity/ignoreCompareQuantity.
        expected = quantity["changeFromQuantity"]
        if expected is not None and expected != current:
            return [
                user_error(
                    "The changeFromQuantity argument no longer matches the persisted quantity.",
                    [*where, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            ]
        return []
    if data.get("ignoreCompareQuantity"):
        return []
    if quantity.get("compareQuantity") is None:
        return [
            user_error(
                "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.",
                [*where, "compareQuantity"],
                "COMPARE_QUANTITY_REQUIRED",
            )
        ]
    if quantity["compareQuantity"] != current:
        return [
            user_error(
                "The compareQuantity value does not match persisted value.",
                [*where, "compareQuantity"],
                "COMPARE_QUANTITY_STALE",
            )
        ]
    return []


# --- inventoryAdjustQuantities ----------------------------------------------------------------


def inventory_adjust_quantities(shop: Shop, arguments: dict[str, Any], version: ApiVersion, now: float) -> Outcome:
    """Apply deltas; `changeFromQuantity` (2026-01+) guards each one; all or nothing."""
    data = arguments["input"]
    name = data["name"]
    name_problem = None
    if name not in ADJUSTABLE_NAMES:
        name_problem = user_error("The specified quantity name is invalid.", ["input", "name"], "INVALID_QUANTITY_NAME")
    problems = _common_input_problems(data, name_problem)
    ledger_documents = {change.get("ledgerDocumentUri") for change in data["changes"]}
    if len(ledger_documents) > 1:
        problems.append(
            user_error(
                "All changes must have the same ledger document URI or, in the case of adjusting available, "
                "no ledger document URI.",
                ["input", "changes"],
                "MAX_ONE_LEDGER_DOCUMENT",
            )
        )
    planned: list[tuple[InventoryLevel, int]] = []
    for index, change in enumerate(data["changes"]):
        where = ["input", "changes", str(index)]
        problems.extend(_ledger_problems(name, change.get("ledgerDocumentUri"), where))
        level, level_problems = _find_level(shop, change, where, "INVALID_INVENTORY_ITEM", "INVALID_LOCATION")
        problems.extend(level_problems)
        if level is None or name not in ADJUSTABLE_NAMES:
            continue
        current = level.quantity(name)
        expected = change.get("changeFromQuantity") if version.has_change_from_quantity else None
        if expected is not None and expected != current:
            problems.append(
                user_error(
                    "The changeFromQuantity argument no longer matches the persisted quantity.",
                    [*where, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            )
        after = current + change["delta"]
        if after > ADJUST_LIMIT:
            problems.append(
                user_error(
                    "The quantity can't be higher than 2,000,000,000.", [*where, "delta"], "INVALID_QUANTITY_TOO_HIGH"
                )
            )
        elif after < -ADJUST_LIMIT:
            problems.append(
                user_error(
                    "The quantity can't be lower than -2,000,000,000.", [*where, "delta"], "INVALID_QUANTITY_TOO_LOW"
                )
            )
        planned.append((level, change["delta"]))
    if problems:
        return Outcome({"inventoryAdjustmentGroup": None, "userErrors": problems}, failed=True)
    changes: list[QuantityChange] = []
    for level, delta in planned:
        on_hand_before = level.on_hand
        level.set_quantity(name, level.quantity(name) + delta)
        level.updated_at = now
        ledger = None if name == "available" else data["changes"][0].get("ledgerDocumentUri")
        changes.append(QuantityChange(name, delta, level.quantity(name), level.item_id, level.location_id, ledger))
        companion = "available" if name == "on_hand" else "on_hand"
        moved = level.on_hand - on_hand_before if companion == "on_hand" else delta
        if moved and name != "incoming":
            changes.append(
                QuantityChange(companion, moved, level.quantity(companion), level.item_id, level.location_id, ledger)
            )
    return _applied(shop, data, changes, [level for level, _ in planned], now)


def _ledger_problems(name: str, ledger: str | None, where: list[str]) -> list[dict[str, Any]]:
    field_path = [*where, "ledgerDocumentUri"]
    if name == "available":
        if ledger is not None:
            return [
                user_error(
                    "A ledger document URI is not allowed when adjusting available.",
                    field_path,
                    "INVALID_AVAILABLE_DOCUMENT",
                )
            ]
        return []
    if ledger is None:
        return [
            user_error(
                "A ledger document URI is required except when adjusting available.",
                field_path,
                "INVALID_QUANTITY_DOCUMENT",
            )
        ]
    if ledger.startswith("gid://shopify/"):
        return [
            user_error(
                "Internal (gid://shopify/) ledger documents are not allowed to be adjusted via API.",
                field_path,
                "INTERNAL_LEDGER_DOCUMENT",
            )
        ]
    if not URI.fullmatch(ledger):
        return [user_error("The specified ledger document is invalid.", field_path, "INVALID_LEDGER_DOCUMENT")]
    return []


# --- shared -----------------------------------------------------------------------------------


def _common_input_problems(data: dict[str, Any], name_problem: dict[str, Any] | None) -> list[dict[str, Any]]:
    problems = [name_problem] if name_problem else []
    if data["reason"] not in INVENTORY_REASONS:
        problems.append(user_error("The specified reason is invalid.", ["input", "reason"], "INVALID_REASON"))
    reference = data.get("referenceDocumentUri")
    if reference is not None and not URI.fullmatch(reference):
        problems.append(
            user_error(
                "The specified reference document is invalid.",
                ["input", "referenceDocumentUri"],
                "INVALID_REFERENCE_DOCUMENT",
            )
        )
    return problems


def _find_level(
    shop: Shop, entry: dict[str, Any], where: list[str], item_code: str, location_code: str
) -> tuple[InventoryLevel | None, list[dict[str, Any]]]:
    catalog = shop.catalog
    item_id = parse_gid(entry["inventoryItemId"], "InventoryItem")
    location_id = parse_gid(entry["locationId"], "Location")
    problems = []
    if item_id is None or item_id[1] not in catalog.items:
        problems.append(
            user_error("The specified inventory item could not be found.", [*where, "inventoryItemId"], item_code)
        )
    if location_id is None or location_id[1] not in catalog.locations:
        problems.append(user_error("The specified location could not be found.", [*where, "locationId"], location_code))
    if problems or item_id is None or location_id is None:
        return None, problems
    level = catalog.level(item_id[1], location_id[1])
    if level is None:
        return None, [
            user_error(
                "The specified inventory item is not stocked at the location.",
                [*where, "locationId"],
                "ITEM_NOT_STOCKED_AT_LOCATION",
            )
        ]
    return level, []


def _applied(
    shop: Shop, data: dict[str, Any], changes: list[QuantityChange], levels: list[InventoryLevel], now: float
) -> Outcome:
    catalog = shop.catalog
    group = AdjustmentGroup(
        id=catalog.next_id("InventoryAdjustmentGroup"),
        created_at=now,
        reason=data["reason"],
        reference_document_uri=data.get("referenceDocumentUri"),
        changes=tuple(changes),
    )
    skus = []
    for level in levels:
        item = catalog.items[level.item_id]
        item.updated_at = now
        skus.append(catalog.variants[item.variant_id].sku)
    return Outcome(
        {"inventoryAdjustmentGroup": AdjustmentGroupView(shop, group), "userErrors": []},
        written_skus=skus,
        changed_levels=levels,
    )
