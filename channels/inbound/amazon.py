"""Amazon SP-API notifications: `ORDER_CHANGE` (orders) and
`LISTINGS_ITEM_MFN_QUANTITY_CHANGE` (stock, compared with what we push: our own writes echo).

Real SP-API publishes notifications to the seller's SQS queue (or EventBridge), where AWS IAM
is the trust path; the message body is the notification itself, in the envelope
`{NotificationVersion, NotificationType, PayloadVersion, EventTime, Payload,
NotificationMetadata}`. Delivered to this endpoint (by an SQS-to-HTTPS relay, or by the
sandbox), it must carry `X-Sandbox-Signature: base64(HMAC-SHA256(webhook_secret, body))` in
place of IAM. SQS delivers at least once: the dedupe key is `NotificationId`.
"""
from __future__ import annotations

from collections.abc import Mapping

from .base import (
    LineReport,
    LineStatus,
    MalformedPayload,
    ParsedWebhook,
    StockReport,
    header,
    json_object,
    objects_in,
    parse_time,
    quantity,
    text_id,
    verify_base64_hmac_sha256,
)

SIGNATURE_HEADER = "X-Sandbox-Signature"
STATUSES = {
    "Pending": LineStatus.OPEN,          # not paid yet: Amazon holds the unit
    "PendingAvailability": LineStatus.OPEN,
    "Unshipped": LineStatus.PAID,
    "PartiallyShipped": LineStatus.PAID,
    "Shipped": LineStatus.FULFILLED,
    "InvoiceUnconfirmed": LineStatus.FULFILLED,
    "Canceled": LineStatus.CANCELLED,
    "Unfulfillable": LineStatus.CANCELLED,
}


def verify(*, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    verify_base64_hmac_sha256(secret=secret, body=body, signature=header(headers, SIGNATURE_HEADER))


def parse(*, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
    envelope = json_object(body)
    kind = envelope.get("NotificationType")
    metadata = envelope.get("NotificationMetadata")
    if not isinstance(kind, str) or not isinstance(metadata, dict):
        raise MalformedPayload("not an SP-API notification: NotificationType and NotificationMetadata are required")
    payload = envelope.get("Payload")
    if not isinstance(payload, dict):
        raise MalformedPayload("Payload: must be an object")
    common = dict(key=text_id(metadata.get("NotificationId"), "NotificationMetadata.NotificationId"), topic=kind,
                  triggered_at=parse_time(envelope.get("EventTime")))
    if kind == "ORDER_CHANGE":
        change = payload.get("OrderChangeNotification")
        if not isinstance(change, dict) or not isinstance(change.get("Summary"), dict):
            raise MalformedPayload("Payload.OrderChangeNotification.Summary: required")
        return ParsedWebhook(**common, order_id=text_id(change.get("AmazonOrderId"), "AmazonOrderId"),
                             lines=_lines(change["Summary"]))
    if kind == "LISTINGS_ITEM_MFN_QUANTITY_CHANGE":
        sku, available = payload.get("Sku"), payload.get("Quantity")
        if not isinstance(sku, str) or not sku:
            raise MalformedPayload("Payload.Sku: required")
        return ParsedWebhook(**common, stock=(StockReport(sku=sku, available=quantity(available, "Payload.Quantity")),))
    return ParsedWebhook(**common, ignored=f"notification {kind} is not used")


def _lines(summary: dict) -> tuple[LineReport, ...]:
    status = STATUSES.get(summary.get("OrderStatus"))
    if status is None:
        raise MalformedPayload(f"Summary.OrderStatus: unknown status {summary.get('OrderStatus')!r}")
    return tuple(
        LineReport(
            line_id=text_id(item.get("OrderItemId"), f"{where}.OrderItemId"),
            sku=str(item.get("SellerSKU") or ""),
            quantity=quantity(item.get("Quantity"), f"{where}.Quantity"),
            status=status,
        )
        for where, item in objects_in(summary.get("OrderItems"), "Summary.OrderItems")
    )
