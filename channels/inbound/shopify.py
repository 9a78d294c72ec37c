"""Shopify webhooks: `orders/create`, `orders/paid`, `orders/updated`, `orders/fulfilled`,
`orders/cancelled`, `refunds/create`, `inventory_levels/update`; the rest are acknowledged
and ignored (product attributes edited in Shopify are never written back).

Verification (shopify.dev, "Verify webhooks"): `X-Shopify-Hmac-Sha256` is
base64(HMAC-SHA256(secret, raw body)), checked on the raw bytes before parsing. Duplicates of
one event share `X-Shopify-Event-Id` (Shopify: "dedupe on it"); `X-Shopify-Triggered-At`
dates the event, so a late redelivery is recognised as older than what we have applied.
Bodies are the REST resources without their wrapper (REST-format webhooks).
"""
from __future__ import annotations

from collections.abc import Mapping

from .base import (
    LineReport,
    LineStatus,
    MalformedPayload,
    ParsedWebhook,
    Restock,
    StockReport,
    header,
    json_object,
    objects_in,
    parse_time,
    quantity,
    text_id,
    verify_base64_hmac_sha256,
)

ORDER_TOPICS = {"orders/create", "orders/paid", "orders/updated", "orders/fulfilled", "orders/partially_fulfilled",
                "orders/cancelled", "orders/edited"}
PAID = {"paid", "partially_paid", "partially_refunded", "refunded"}
# A refund line puts units back on the shelf unless it says `no_restock`.
RESTOCKING = {"return", "cancel", "legacy_restock"}


def verify(*, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    verify_base64_hmac_sha256(secret=secret, body=body, signature=header(headers, "X-Shopify-Hmac-Sha256"))


def parse(*, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
    topic = header(headers, "X-Shopify-Topic")
    if not topic:
        raise MalformedPayload("missing X-Shopify-Topic header")
    key = header(headers, "X-Shopify-Event-Id") or header(headers, "X-Shopify-Webhook-Id")
    if not key:
        raise MalformedPayload("missing X-Shopify-Event-Id (or X-Shopify-Webhook-Id) header")
    payload = json_object(body)
    common = dict(key=key, topic=topic, triggered_at=parse_time(header(headers, "X-Shopify-Triggered-At")))
    if topic in ORDER_TOPICS:
        return ParsedWebhook(**common, order_id=text_id(payload.get("id"), "id"), lines=_order_lines(payload))
    if topic == "refunds/create":
        order_id = text_id(payload.get("order_id"), "order_id")
        return ParsedWebhook(**common, order_id=order_id, restocks=_restocks(payload))
    if topic == "inventory_levels/update":
        item = text_id(payload.get("inventory_item_id"), "inventory_item_id")
        available = payload.get("available")
        if available is None:  # Shopify's own sample sends null: nothing to compare
            return ParsedWebhook(**common, ignored="inventory level without an available quantity")
        if isinstance(available, bool) or not isinstance(available, int):
            raise MalformedPayload(f"available: must be an integer, got {available!r}")
        external_id = f"gid://shopify/InventoryItem/{item}"  # as the adapter stores it on the listing
        return ParsedWebhook(**common, stock=(StockReport(external_id=external_id, available=available),))
    if topic.startswith("products/"):
        return ParsedWebhook(**common, ignored="product attributes edited on the channel are not written back")
    return ParsedWebhook(**common, ignored=f"topic {topic} is not used")


def _order_lines(order: dict) -> tuple[LineReport, ...]:
    cancelled = bool(order.get("cancelled_at"))
    paid = order.get("financial_status") in PAID
    lines = []
    for where, item in objects_in(order.get("line_items"), "line_items"):
        if cancelled:
            status = LineStatus.CANCELLED
        elif item.get("fulfillment_status") == "fulfilled":
            status = LineStatus.FULFILLED
        else:
            status = LineStatus.PAID if paid else LineStatus.OPEN
        lines.append(
            LineReport(
                line_id=text_id(item.get("id"), f"{where}.id"),
                sku=str(item.get("sku") or ""),  # a custom line item has no SKU
                quantity=quantity(item.get("quantity"), f"{where}.quantity"),
                status=status,
            )
        )
    return tuple(lines)


def _restocks(refund: dict) -> tuple[Restock, ...]:
    refund_id = text_id(refund.get("id"), "id")
    restocks = []
    for where, item in objects_in(refund.get("refund_line_items"), "refund_line_items"):
        if item.get("restock_type") not in RESTOCKING:
            continue
        line_item = item.get("line_item") if isinstance(item.get("line_item"), dict) else {}
        restocks.append(
            Restock(
                refund_id=refund_id,
                line_id=text_id(item.get("line_item_id"), f"{where}.line_item_id"),
                sku=str(line_item.get("sku") or ""),
                quantity=quantity(item.get("quantity"), f"{where}.quantity"),
            )
        )
    return tuple(restocks)
