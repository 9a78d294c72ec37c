"""Listing attribute rules: what a patch or a feed message may set, and how it is applied.

Amazon checks attribute values against the product type definition of the listing; the
sandbox knows the two attributes a sync engine writes (`purchasable_offer` for price,
`fulfillment_availability` for quantity) in detail and takes any other snake_case attribute
as an array of objects, the shape every product type attribute has. Issue codes are the ones
Amazon answers for the same mistakes where public threads show them (90000900 invalid
attributes, 4000001 invalid value, 90220 missing value); the messages add which field is wrong.

Values arrive parsed with `Decimal` for JSON fractions so a price keeps its exact digits.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*")
ATTRIBUTE_PATH = re.compile(r"/attributes/(?P<name>[^/]+)")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
PATCH_OPS = ("add", "replace", "merge", "delete")

PRICE = "purchasable_offer"
QUANTITY = "fulfillment_availability"
DEFAULT_CHANNEL = "DEFAULT"

# The patch request shape of the Listings Items model (`ListingsItemPatchRequest` and
# `PatchOperation` in listingsItems_2021-08-01.json), as a JSON Schema for `schema.Validator`.
PATCH_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["productType", "patches"],
    "properties": {
        "productType": {"type": "string"},
        "patches": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {"type": "string", "enum": list(PATCH_OPS)},
                    "path": {"type": "string"},
                    "value": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}

# `ListingsItemPutRequest` of the same model.
PUT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["productType", "attributes"],
    "properties": {
        "productType": {"type": "string"},
        "requirements": {"type": "string", "enum": ["LISTING", "LISTING_PRODUCT_ONLY", "LISTING_OFFER_ONLY"]},
        "attributes": {"type": "object"},
    },
}


@dataclass(frozen=True)
class Issue:
    """One listings issue (the `Issue` definition of the Listings Items model)."""

    code: str
    message: str
    attribute_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    severity: str = "ERROR"

    def for_api(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
            "attributeNames": list(self.attribute_names),
            "categories": list(self.categories),
        }

    def for_report(self, message_id: int | None, sku: str | None) -> dict[str, Any]:
        """The issue as a feed processing report lists it (one attribute name, no categories)."""
        entry: dict[str, Any] = {}
        if message_id is not None:
            entry["messageId"] = message_id
        if sku:
            entry["sku"] = sku
        entry |= {"code": self.code, "severity": self.severity, "message": self.message}
        if self.attribute_names:
            entry["attributeName"] = self.attribute_names[0]
        return entry


def invalid_attribute(name: str, reason: str = "") -> Issue:
    message = "The attributes are invalid." + (f" {reason}" if reason else "")
    return Issue("90000900", message, (name,), ("INVALID_ATTRIBUTE",))


def invalid_value(name: str, reason: str, category: str = "INVALID_ATTRIBUTE") -> Issue:
    return Issue("4000001", f"The provided value for '{name}' is invalid: {reason}.", (name,), (category,))


def missing_value(name: str, field_path: str, category: str = "MISSING_ATTRIBUTE") -> Issue:
    return Issue("90220", f"'{field_path}' is required but not supplied.", (name,), (category,))


@dataclass(frozen=True)
class Marketplace:
    """Where a store sells: the seller, its marketplace, and that marketplace's currency."""

    seller_id: str
    marketplace_id: str
    currency: str


@dataclass(frozen=True)
class PatchOperation:
    op: str
    name: str  # the attribute under /attributes/
    value: list[dict[str, Any]] | None


@dataclass
class Checked:
    """The outcome of checking a submission: issues, and the operations to apply if none."""

    issues: list[Issue] = field(default_factory=list)
    operations: list[PatchOperation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(issue.severity == "ERROR" for issue in self.issues)


# --- value checks ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_purchasable_offer(
    entries: list[dict[str, Any]], market: Marketplace, marketplace_ids: list[str]
) -> list[Issue]:
    issues: list[Issue] = []
    for index, entry in enumerate(entries):
        where = f"{PRICE}[{index}]"
        marketplace_id = entry.get("marketplace_id")
        if marketplace_id is not None and marketplace_id not in marketplace_ids:
            issues.append(
                invalid_value(
                    PRICE,
                    f"{where}.marketplace_id {marketplace_id!r} is not one of the requested marketplaceIds",
                    "INVALID_PRICE",
                )
            )
        currency = entry.get("currency")
        if currency is None:
            issues.append(missing_value(PRICE, f"{where}.currency", "MISSING_PRICE"))
        elif not isinstance(currency, str) or not CURRENCY_CODE.fullmatch(currency):
            issues.append(
                invalid_value(PRICE, f"{where}.currency must be an ISO 4217 code, got {currency!r}", "INVALID_PRICE")
            )
        elif currency != market.currency:
            issues.append(
                invalid_value(
                    PRICE,
                    f"{where}.currency {currency} is not the currency of marketplace "
                    f"{market.marketplace_id} ({market.currency})",
                    "INVALID_PRICE",
                )
            )
        audience = entry.get("audience", "ALL")
        if not isinstance(audience, str):
            issues.append(invalid_value(PRICE, f"{where}.audience must be a string", "INVALID_PRICE"))
        if "our_price" in entry:
            issues += _check_schedule_prices(entry["our_price"], f"{where}.our_price")
    return issues


def _check_schedule_prices(prices: Any, where: str) -> list[Issue]:
    if not isinstance(prices, list) or not prices:
        return [invalid_value(PRICE, f"{where} must be a non-empty array", "INVALID_PRICE")]
    issues: list[Issue] = []
    for index, price in enumerate(prices):
        schedule = price.get("schedule") if isinstance(price, dict) else None
        if not isinstance(schedule, list) or not schedule:
            issues.append(invalid_value(PRICE, f"{where}[{index}].schedule must be a non-empty array", "INVALID_PRICE"))
            continue
        for step, entry in enumerate(schedule):
            value = entry.get("value_with_tax") if isinstance(entry, dict) else None
            if value is None:
                issues.append(
                    missing_value(PRICE, f"{where}[{index}].schedule[{step}].value_with_tax", "MISSING_PRICE")
                )
            elif not _is_number(value) or value < 0:
                issues.append(
                    invalid_value(
                        PRICE,
                        f"{where}[{index}].schedule[{step}].value_with_tax must be a number >= 0, got {value!r}",
                        "INVALID_PRICE",
                    )
                )
    return issues


def _check_fulfillment_availability(
    entries: list[dict[str, Any]], market: Marketplace, marketplace_ids: list[str]
) -> list[Issue]:
    issues: list[Issue] = []
    for index, entry in enumerate(entries):
        where = f"{QUANTITY}[{index}]"
        channel = entry.get("fulfillment_channel_code")
        if channel is None:
            issues.append(missing_value(QUANTITY, f"{where}.fulfillment_channel_code"))
        elif not isinstance(channel, str) or not channel:
            issues.append(
                invalid_value(QUANTITY, f"{where}.fulfillment_channel_code must be a non-empty string, got {channel!r}")
            )
        quantity = entry.get("quantity")
        if quantity is None:
            if channel == DEFAULT_CHANNEL:
                issues.append(missing_value(QUANTITY, f"{where}.quantity"))
        elif not _is_integer(quantity) or quantity < 0:
            issues.append(invalid_value(QUANTITY, f"{where}.quantity must be an integer >= 0, got {quantity!r}"))
        lead_time = entry.get("lead_time_to_ship_max_days")
        if lead_time is not None and (not _is_integer(lead_time) or lead_time < 0):
            issues.append(
                invalid_value(
                    QUANTITY, f"{where}.lead_time_to_ship_max_days must be an integer >= 0, got {lead_time!r}"
                )
            )
    return issues


VALUE_CHECKS: dict[str, Callable[[list[dict[str, Any]], Marketplace, list[str]], list[Issue]]] = {
    PRICE: _check_purchasable_offer,
    QUANTITY: _check_fulfillment_availability,
}


def check_attribute_value(name: str, value: Any, market: Marketplace, marketplace_ids: list[str]) -> list[Issue]:
    """Issues with one attribute's value: an array of objects, then the attribute's own rules."""
    if not ATTRIBUTE_NAME.fullmatch(name):
        # e.g. "fulfillmentAvailability": Amazon attribute names are snake_case.
        return [invalid_attribute(name, f"'{name}' is not an attribute of this product type.")]
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        return [invalid_value(name, "an attribute value must be an array of objects")]
    check = VALUE_CHECKS.get(name)
    return check(value, market, marketplace_ids) if check else []


def check_attributes(attributes: dict[str, Any], market: Marketplace, marketplace_ids: list[str]) -> list[Issue]:
    """Issues with a whole attributes object (putListingsItem, feed UPDATE/PARTIAL_UPDATE)."""
    issues: list[Issue] = []
    for name, value in attributes.items():
        issues += check_attribute_value(name, value, market, marketplace_ids)
    return issues


def check_patches(patches: list[dict[str, Any]], market: Marketplace, marketplace_ids: list[str]) -> Checked:
    """Value-level checks of structurally valid patches (see PATCH_REQUEST_SCHEMA)."""
    checked = Checked()
    for index, patch in enumerate(patches):
        path = patch["path"]
        match = ATTRIBUTE_PATH.fullmatch(path)
        if match is None:
            # "Only top-level listings item attributes can be patched" (patchListingsItem).
            name = path.strip("/").split("/")[1] if path.startswith("/attributes/") else path
            checked.issues.append(
                invalid_attribute(
                    name,
                    f"patches[{index}].path {path!r} must be /attributes/<attribute name>; "
                    "nested paths cannot be patched.",
                )
            )
            continue
        name = match["name"]
        value = patch.get("value")
        if patch["op"] != "delete":
            if value is None:
                checked.issues.append(missing_value(name, f"patches[{index}].value"))
                continue
            issues = check_attribute_value(name, value, market, marketplace_ids)
        else:
            issues = [] if ATTRIBUTE_NAME.fullmatch(name) else [invalid_attribute(name)]
        checked.issues += issues
        if not issues:
            checked.operations.append(PatchOperation(patch["op"], name, value))
    return checked


# --- applying -------------------------------------------------------------------------------


def _identity(name: str, entry: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two entries of an attribute "the same value" for merge and delete."""
    if name == QUANTITY:
        return (entry.get("fulfillment_channel_code"),)
    if name == PRICE:
        return (entry.get("marketplace_id"), entry.get("audience", "ALL"))
    return (entry.get("marketplace_id"), entry.get("language_tag"))


def apply_operations(attributes: dict[str, Any], operations: list[PatchOperation]) -> dict[str, Any]:
    """The attributes after the operations, in order; the input is not changed."""
    result = copy.deepcopy(attributes)
    for operation in operations:
        value = copy.deepcopy(operation.value) if operation.value is not None else None
        if operation.op in ("add", "replace"):
            result[operation.name] = value
        elif operation.op == "merge":
            current = result.get(operation.name) or []
            by_identity = {_identity(operation.name, entry): entry for entry in current}
            for entry in value or []:
                existing = by_identity.get(_identity(operation.name, entry))
                if existing is not None:
                    existing.update(entry)
                else:
                    current.append(entry)
            result[operation.name] = current
        elif operation.op == "delete":
            if not value:
                result.pop(operation.name, None)
                continue
            # Delete the entries the value names (e.g. one marketplace's offer), keep the rest.
            doomed = {_identity(operation.name, entry) for entry in value}
            kept = [entry for entry in result.get(operation.name, []) if _identity(operation.name, entry) not in doomed]
            if kept:
                result[operation.name] = kept
            else:
                result.pop(operation.name, None)
    return result


def partial_update(attributes: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Feed PARTIAL_UPDATE: the given attributes replace theirs, the others stay."""
    return {**copy.deepcopy(attributes), **copy.deepcopy(changes)}
