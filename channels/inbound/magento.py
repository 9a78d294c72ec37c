"""Magento orders, polled (`GET /V1/orders` by `updated_at`): Magento 2 sends no order
webhooks, so the `magento` kind has no webhook endpoint and its orders are stored and applied
like webhooks that syncsvc fetched itself.

An order's lines follow its `state`: `new`, `pending_payment`, `payment_review`, `holded`
are not paid yet; `processing` is invoiced (paid); `complete` is shipped; `canceled` and
`closed` (fully refunded: the sale stands, see below) end it. Items of configurable and bundle products are parents: their
simple children carry the SKU whose stock moves. `qty_canceled` lowers what a line holds.
"""
from __future__ import annotations

from collections.abc import Mapping

from .base import (
    LineReport,
    LineStatus,
    MalformedPayload,
    ParsedWebhook,
    json_object,
    news_digest,
    objects_in,
    parse_time,
    text_id,
)

WEBHOOKS = False
POLL_TOPIC = "orders.polled"
STATES = {
    "new": LineStatus.OPEN,
    "pending_payment": LineStatus.OPEN,
    "payment_review": LineStatus.OPEN,
    "holded": LineStatus.OPEN,
    "processing": LineStatus.PAID,
    "complete": LineStatus.FULFILLED,
    "canceled": LineStatus.CANCELLED,
    # Closed = fully refunded. Magento returns credit-memo items to stock only when asked
    # ("Return to Stock", off by default) and the order does not say whether it was, so the
    # sale stands: see `LineStatus.REFUNDED`.
    "closed": LineStatus.REFUNDED,
}
PARENT_TYPES = {"configurable", "bundle"}


def parse(*, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
    order = json_object(body)
    entity_id = text_id(order.get("entity_id"), "entity_id")
    updated_at = str(order.get("updated_at") or "")
    status = STATES.get(order.get("state"))
    if status is None:
        raise MalformedPayload(f"state: unknown order state {order.get('state')!r}")
    lines = []
    for where, item in objects_in(order.get("items"), "items"):
        if item.get("product_type") in PARENT_TYPES:
            continue
        ordered = _quantity(item.get("qty_ordered"), f"{where}.qty_ordered")
        held = max(0, ordered - _quantity(item.get("qty_canceled", 0), f"{where}.qty_canceled"))
        lines.append(
            LineReport(
                line_id=text_id(item.get("item_id"), f"{where}.item_id"),
                sku=str(item.get("sku") or ""),
                quantity=held if held or status is LineStatus.CANCELLED else ordered,
                status=LineStatus.CANCELLED if held == 0 else status,
            )
        )
    # The same order polled again unchanged has the same key: stored once. `updated_at` has
    # one-second resolution, so the key also carries a digest of what the lines say: two
    # changes within one second are two events.
    news = news_digest(order.get("state"), lines)
    return ParsedWebhook(key=f"order:{entity_id}:{updated_at}:{news}", topic=POLL_TOPIC, order_id=entity_id,
                         triggered_at=parse_time(updated_at.replace(" ", "T") + "+00:00" if updated_at else None),
                         lines=tuple(lines))


def parse_polled(*, body: bytes) -> ParsedWebhook:
    """Every Magento order is polled: the same reading as `parse`."""
    return parse(headers={}, body=body)


def _quantity(value, where: str) -> int:
    """Magento sends quantities as numbers that may be fractional (`1.0000`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedPayload(f"{where}: must be a number, got {value!r}") from None
    if number < 0 or number != int(number):
        raise MalformedPayload(f"{where}: must be a whole, non-negative number, got {value!r}")
    return int(number)
