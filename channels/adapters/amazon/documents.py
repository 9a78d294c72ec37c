"""What we send to SP-API and how we read its listings: the JSON Patch operations for a SKU's
price and quantity (the same in a PATCH request and in a JSON_LISTINGS_FEED message), and the
live price and quantity in a listings item."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..base import PushItem
from ..rest import float_money

FEED_VERSION = "2.0"
FEED_MAX_MESSAGES = 25_000


@dataclass(frozen=True)
class Offer:
    """The channel settings a patch is written for."""

    marketplace_id: str
    currency: str
    product_type: str
    fulfillment_channel_code: str = "DEFAULT"


def patches(items: Sequence[PushItem], offer: Offer) -> list[dict]:
    """One `replace` per aspect of one SKU: price as the offer's `our_price`, stock as
    `fulfillment_availability` (merchant-fulfilled quantity)."""
    operations = []
    for item in items:
        if item.aspect == "price":
            value = [{
                "marketplace_id": offer.marketplace_id,
                "currency": offer.currency,
                "our_price": [{"schedule": [{"value_with_tax": float_money(item.price)}]}],
            }]
            operations.append({"op": "replace", "path": "/attributes/purchasable_offer", "value": value})
        elif item.aspect == "inventory":
            value = [{"fulfillment_channel_code": offer.fulfillment_channel_code, "quantity": int(item.available)}]
            operations.append({"op": "replace", "path": "/attributes/fulfillment_availability", "value": value})
    return operations


def patch_request(items: Sequence[PushItem], offer: Offer) -> dict:
    """The body of `patchListingsItem` (ListingsItemPatchRequest)."""
    return {"productType": offer.product_type, "patches": patches(items, offer)}


def feed_document(seller_id: str, groups: Sequence[tuple[int, str, Sequence[PushItem]]], offer: Offer) -> dict:
    """A JSON_LISTINGS_FEED v2 document: one PATCH message per (messageId, SKU, its items)."""
    if len(groups) > FEED_MAX_MESSAGES:
        raise ValueError(f"a listings feed holds at most {FEED_MAX_MESSAGES} messages, not {len(groups)}")
    return {
        "header": {"sellerId": seller_id, "version": FEED_VERSION, "issueLocale": "en_US"},
        "messages": [
            {"messageId": message_id, "sku": sku, "operationType": "PATCH", "productType": offer.product_type,
             "patches": patches(items, offer)}
            for message_id, sku, items in groups
        ],
    }


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _first(values, marketplace_id: str | None = None):
    """The entry for our marketplace when entries name one, else the first."""
    if not isinstance(values, list) or not values:
        return None
    if marketplace_id is not None:
        for value in values:
            if isinstance(value, dict) and value.get("marketplace_id") == marketplace_id:
                return value
    return values[0] if isinstance(values[0], dict) else None


def live_price(item: dict, marketplace_id: str) -> Decimal | None:
    offer = _first((item.get("attributes") or {}).get("purchasable_offer"), marketplace_id) or {}
    price = _first(offer.get("our_price")) or {}
    schedule = _first(price.get("schedule")) or {}
    return _decimal(schedule.get("value_with_tax"))


def live_quantity(item: dict, fulfillment_channel_code: str = "DEFAULT") -> int | None:
    """The merchant-fulfilled quantity: `fulfillmentAvailability` first (what Amazon applies),
    the submitted attribute when that is absent."""
    for availability in item.get("fulfillmentAvailability") or []:
        if isinstance(availability, dict) and availability.get("fulfillmentChannelCode") == fulfillment_channel_code:
            if availability.get("quantity") is not None:
                return int(availability["quantity"])
    availability = _first((item.get("attributes") or {}).get("fulfillment_availability")) or {}
    return int(availability["quantity"]) if availability.get("quantity") is not None else None


def first_error(issues) -> tuple[str, str] | None:
    """(code, message) of the first issue of severity ERROR (or the first issue at all)."""
    issues = [issue for issue in issues or [] if isinstance(issue, dict)]
    chosen = next((issue for issue in issues if issue.get("severity") == "ERROR"), issues[0] if issues else None)
    if chosen is None:
        return None
    return str(chosen.get("code") or "invalid"), str(chosen.get("message") or "")
