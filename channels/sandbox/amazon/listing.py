"""One seller listing: its attributes, what they say about price and stock, and its API view.

The attributes are the source of truth, as on Amazon; the price and quantity the control API
shows are read from them (`purchasable_offer` and `fulfillment_availability`), and a
merchant's `PUT items/{sku}` writes them back into those attributes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .attributes import DEFAULT_CHANNEL, PRICE, QUANTITY, Marketplace
from .times import amazon_time

DEFAULT_PRODUCT_TYPE = "PRODUCT"
INCLUDED_DATA = (
    "summaries",
    "attributes",
    "issues",
    "offers",
    "fulfillmentAvailability",
    "procurement",
    "relationships",
    "productTypes",
)


@dataclass
class Listing:
    """A listings item of the store's seller in the store's marketplace."""

    sku: str
    product_type: str
    attributes: dict[str, Any]
    created_at: float
    updated_at: float

    @property
    def asin(self) -> str:
        # Stable per SKU, shaped like a real ASIN ("B0" and 8 more upper-case characters).
        digest = hashlib.sha256(self.sku.encode()).hexdigest().upper()
        return "B0" + digest[:8]


def json_safe(value: Any) -> Any:
    """Attributes as JSON can carry them: Decimal fractions become JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, dict):
        return {name: json_safe(item) for name, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def decimal_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        return format(Decimal(str(value)) if isinstance(value, float) else Decimal(value), "f")
    except InvalidOperation:
        return None


# --- reading the attributes -----------------------------------------------------------------


def _offer_for(attributes: dict[str, Any], market: Marketplace) -> dict[str, Any] | None:
    """The B2C ("ALL" audience) offer of the store's marketplace, if the listing has one."""
    for entry in attributes.get(PRICE) or []:
        if (
            entry.get("marketplace_id", market.marketplace_id) == market.marketplace_id
            and entry.get("audience", "ALL") == "ALL"
        ):
            return dict(entry)
    return None


# Currencies without minor units; every other marketplace currency has two.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY"})


def price_of(attributes: dict[str, Any], market: Marketplace) -> str | None:
    """The current `our_price` as decimal text, as Seller Central shows it: at least the
    currency's minor units (12.5 -> "12.50"), never fewer digits than were sent."""
    offer = _offer_for(attributes, market)
    if offer is None:
        return None
    try:
        text = decimal_text(offer["our_price"][0]["schedule"][0]["value_with_tax"])
    except (KeyError, IndexError, TypeError):
        return None
    if text is None:
        return None
    minor_units = 0 if market.currency in ZERO_DECIMAL_CURRENCIES else 2
    value = Decimal(text)
    if -value.as_tuple().exponent < minor_units:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-minor_units))
    return format(value, "f")


def quantity_of(attributes: dict[str, Any]) -> int | None:
    """The merchant-fulfilled (DEFAULT channel) quantity, or None."""
    for entry in attributes.get(QUANTITY) or []:
        if entry.get("fulfillment_channel_code") == DEFAULT_CHANNEL:
            quantity = entry.get("quantity")
            return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
    return None


def title_of(attributes: dict[str, Any]) -> str | None:
    for entry in attributes.get("item_name") or []:
        if isinstance(entry.get("value"), str):
            return str(entry["value"])
    return None


# --- writing them as a merchant would in Seller Central --------------------------------------


def with_price(attributes: dict[str, Any], price: str | None, market: Marketplace) -> dict[str, Any]:
    kept = [entry for entry in attributes.get(PRICE) or [] if _offer_for({PRICE: [entry]}, market) is None]
    if price is not None:
        kept.insert(
            0,
            {
                "marketplace_id": market.marketplace_id,
                "currency": market.currency,
                "audience": "ALL",
                "our_price": [{"schedule": [{"value_with_tax": Decimal(price)}]}],
            },
        )
    return _set_or_drop(attributes, PRICE, kept)


def with_quantity(attributes: dict[str, Any], quantity: int | None) -> dict[str, Any]:
    kept = [
        entry for entry in attributes.get(QUANTITY) or [] if entry.get("fulfillment_channel_code") != DEFAULT_CHANNEL
    ]
    if quantity is not None:
        kept.insert(0, {"fulfillment_channel_code": DEFAULT_CHANNEL, "quantity": quantity})
    return _set_or_drop(attributes, QUANTITY, kept)


def with_title(attributes: dict[str, Any], title: str | None, market: Marketplace) -> dict[str, Any]:
    value = (
        [{"value": title, "language_tag": "en_US", "marketplace_id": market.marketplace_id}]
        if title is not None
        else []
    )
    return _set_or_drop(attributes, "item_name", value)


def _set_or_drop(attributes: dict[str, Any], name: str, value: list[dict[str, Any]]) -> dict[str, Any]:
    result = dict(attributes)
    if value:
        result[name] = value
    else:
        result.pop(name, None)
    return result


# --- the getListingsItem view ---------------------------------------------------------------


def statuses(attributes: dict[str, Any], market: Marketplace) -> list[str]:
    # Discoverable once it exists; buyable only with a price and stock to sell.
    quantity = quantity_of(attributes)
    buyable = price_of(attributes, market) is not None and quantity is not None and quantity > 0
    return ["BUYABLE", "DISCOVERABLE"] if buyable else ["DISCOVERABLE"]


def render(listing: Listing, market: Marketplace, included: set[str]) -> dict[str, Any]:
    """The listing as getListingsItem answers it (the `Item` definition), for `included` data sets."""
    attributes = listing.attributes
    item: dict[str, Any] = {"sku": listing.sku}
    if "summaries" in included:
        summary: dict[str, Any] = {
            "marketplaceId": market.marketplace_id,
            "asin": listing.asin,
            "productType": listing.product_type,
            "conditionType": _condition(attributes),
            "status": statuses(attributes, market),
            "createdDate": amazon_time(listing.created_at),
            "lastUpdatedDate": amazon_time(listing.updated_at),
        }
        title = title_of(attributes)
        if title is not None:
            summary["itemName"] = title
        item["summaries"] = [summary]
    if "attributes" in included:
        item["attributes"] = json_safe(attributes)
    if "issues" in included:
        item["issues"] = []
    if "offers" in included:
        price = price_of(attributes, market)
        item["offers"] = (
            []
            if price is None
            else [
                {
                    "marketplaceId": market.marketplace_id,
                    "offerType": "B2C",
                    "price": {"currencyCode": market.currency, "amount": price},
                    "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
                }
            ]
        )
    if "fulfillmentAvailability" in included:
        item["fulfillmentAvailability"] = [
            {
                "fulfillmentChannelCode": entry.get("fulfillment_channel_code"),
                **({"quantity": entry["quantity"]} if "quantity" in entry else {}),
            }
            for entry in attributes.get(QUANTITY) or []
        ]
    if "procurement" in included:
        item["procurement"] = []
    if "relationships" in included:
        item["relationships"] = [{"marketplaceId": market.marketplace_id, "relationships": []}]
    if "productTypes" in included:
        item["productTypes"] = [{"marketplaceId": market.marketplace_id, "productType": listing.product_type}]
    return item


def _condition(attributes: dict[str, Any]) -> str:
    for entry in attributes.get("condition_type") or []:
        if isinstance(entry.get("value"), str):
            return str(entry["value"])
    return "new_new"
