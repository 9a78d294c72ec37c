"""WooCommerce webhooks: `order.created`, `order.updated` (and `order.restored`); the rest
are acknowledged and ignored.

Verification (WC_Webhook::generate_signature): `X-WC-Webhook-Signature` is
base64(HMAC-SHA256(secret, raw body)). Creating a webhook in WooCommerce first sends an
unsigned ping, form-encoded `webhook_id=<id>` with no `X-WC-Webhook-*` headers, and leaves the
webhook pending unless it gets a 200: it is acknowledged and nothing is stored.

WooCommerce does not retry, but a host or a proxy may deliver twice, and every delivery has
its own `X-WC-Webhook-Delivery-ID`; identical bodies carry identical news, so the dedupe key
is the topic and a digest of the body. The body is the order resource of the REST API.

The same order resource is also polled (`GET /orders` by `date_modified_gmt`: a safety net
for deliveries that failed, see services/polling.py): `parse_polled` reads it into the same
lines, under syncsvc's own topic `order.polled`, keyed by the order's id, `date_modified_gmt`
and a digest of what its lines say, so the poll's overlap stores a version once.

Refunds (`refunds[]`, status `refunded`) do not say which units were put back on the shelf
(WooCommerce restocks only when the merchant asks it to, and does not report it in the
order), so they leave the sale standing; see `LineStatus.REFUNDED`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .base import (
    LineReport,
    LineStatus,
    MalformedPayload,
    ParsedWebhook,
    body_digest,
    header,
    json_object,
    news_digest,
    objects_in,
    parse_time,
    quantity,
    text_id,
    verify_base64_hmac_sha256,
)

PING = re.compile(rb"^webhook_id=\d+$")
POLL_TOPIC = "order.polled"  # ours, not a WooCommerce topic: orders the poll fetched
ORDER_TOPICS = {"order.created", "order.updated", "order.restored"}
STATUSES = {
    "pending": LineStatus.OPEN,         # awaiting payment
    "on-hold": LineStatus.OPEN,         # awaiting payment confirmation (bank transfer)
    "checkout-draft": LineStatus.OPEN,
    "processing": LineStatus.PAID,      # paid, to be shipped
    "completed": LineStatus.FULFILLED,
    "cancelled": LineStatus.CANCELLED,
    "failed": LineStatus.CANCELLED,     # payment failed: WooCommerce releases the stock
    # Refunded: WooCommerce restocks only when the merchant ticks "restock refunded items",
    # and its order resource does not say whether they did (`refunds[]` carries ids, reasons
    # and totals, no lines), so a refund never moves stock here.
    "refunded": LineStatus.REFUNDED,
    "trash": LineStatus.CANCELLED,
}


def is_ping(*, headers: Mapping[str, str], body: bytes) -> bool:
    return not header(headers, "X-WC-Webhook-Topic") and bool(PING.match(body.strip()))


def verify(*, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    verify_base64_hmac_sha256(secret=secret, body=body, signature=header(headers, "X-WC-Webhook-Signature"))


def parse(*, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
    topic = header(headers, "X-WC-Webhook-Topic")
    if not topic:
        raise MalformedPayload("missing X-WC-Webhook-Topic header")
    if topic == POLL_TOPIC:  # the poll's cursor and reading are for orders syncsvc fetched itself
        raise MalformedPayload(f"topic {POLL_TOPIC} is not a WooCommerce webhook topic")
    payload = json_object(body)
    common = dict(key=f"{topic}:{body_digest(body)}", topic=topic,
                  triggered_at=parse_time(_gmt(payload.get("date_modified_gmt"))))
    if topic not in ORDER_TOPICS:
        return ParsedWebhook(**common, ignored=f"topic {topic} is not written back")
    lines = _lines(payload)
    return ParsedWebhook(**common, order_id=text_id(payload.get("id"), "id"), lines=lines)


def parse_polled(*, body: bytes) -> ParsedWebhook:
    """An order as `GET /orders` listed it: the webhook's reading, under `POLL_TOPIC`."""
    payload = json_object(body)
    lines = _lines(payload)
    order_id = text_id(payload.get("id"), "id")
    modified = str(payload.get("date_modified_gmt") or "")
    return ParsedWebhook(key=f"{POLL_TOPIC}:{order_id}:{modified}:{news_digest(payload.get('status'), lines)}",
                         topic=POLL_TOPIC, order_id=order_id, triggered_at=parse_time(_gmt(modified)), lines=lines)


def _lines(payload: dict) -> tuple[LineReport, ...]:
    status = STATUSES.get(payload.get("status"))
    if status is None:
        raise MalformedPayload(f"status: unknown order status {payload.get('status')!r}")
    return tuple(
        LineReport(
            line_id=text_id(item.get("id"), f"{where}.id"),
            sku=str(item.get("sku") or ""),
            quantity=quantity(item.get("quantity"), f"{where}.quantity"),
            status=status,
        )
        for where, item in objects_in(payload.get("line_items"), "line_items")
    )


def _gmt(value) -> str | None:
    """WooCommerce's `*_gmt` times carry no offset: they are UTC."""
    return f"{value}+00:00" if isinstance(value, str) and value and "+" not in value and not value.endswith("Z") else value
