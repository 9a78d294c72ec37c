"""SP-API notifications the store sends when a customer buys, and when the order is later
cancelled or shipped: ORDER_CHANGE, and optionally LISTINGS_ITEM_MFN_QUANTITY_CHANGE, shaped
like Amazon's published examples and schemas (`schemas/order-change-notification.schema.json`,
`schemas/listings-item-mfn-quantity-change-notification.schema.json`). ORDER_CHANGE carries no
refund: SP-API reports refunds in the Finances API and returns in reports, not here.

Real SP-API never calls an HTTPS webhook: it publishes each notification to the seller's
Amazon SQS queue (or EventBridge), and the SQS message body is exactly this JSON; AWS IAM on
the queue is the trust path. The sandbox has no SQS, so it POSTs the message body to the
store's `webhook_url` and signs it in place of that trust path:

    POST {webhook_url}
    Content-Type: application/json
    X-Sandbox-Signature: base64(HMAC-SHA256(webhook_secret, raw body))   (only with a secret)
    X-Sandbox-Notification-Type: ORDER_CHANGE
    X-Sandbox-Message-Id: <uuid>        stands in for the SQS MessageId; same on redeliveries
    X-Sandbox-Receive-Count: 1, 2, ...  stands in for SQS ApproximateReceiveCount

SQS delivers at least once, so `deliveries` > 1 sends the identical body again (same
NotificationId), as a redelivered message would be.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import iso
from .times import amazon_time

SIGNATURE_HEADER = "X-Sandbox-Signature"
DELIVERY_TIMEOUT_S = 10.0
DELIVERY_LOG_LIMIT = 10_000
USER_AGENT = "syncsvc-sandbox-amazon/1 (stands in for Amazon SQS)"


def new_order_id() -> str:
    """An Amazon order id shape: 3-7-7 digits."""
    return f"{secrets.randbelow(900) + 100}-{secrets.randbelow(10**7):07d}-{secrets.randbelow(10**7):07d}"


@dataclass(frozen=True)
class Subscriber:
    """Who the notifications are for: the seller's app and its subscription."""

    seller_id: str
    marketplace_id: str
    application_id: str
    subscription_id: str


def _envelope(notification_type: str, payload: dict[str, Any], subscriber: Subscriber, now: float) -> dict[str, Any]:
    return {
        "NotificationVersion": "1.0",
        "NotificationType": notification_type,
        "PayloadVersion": "1.0",
        "EventTime": amazon_time(now),
        "Payload": payload,
        "NotificationMetadata": {
            "ApplicationId": subscriber.application_id,
            "SubscriptionId": subscriber.subscription_id,
            "PublishTime": amazon_time(now),
            "NotificationId": str(uuid.uuid4()),
        },
    }


def new_order_item_id() -> str:
    return f"{secrets.randbelow(10**14):014d}"


def order_change(
    subscriber: Subscriber,
    *,
    order_id: str,
    sku: str,
    quantity: int,
    now: float,
    order_item_id: str | None = None,
    status: str = "Unshipped",
    purchased_at: float | None = None,
) -> dict[str, Any]:
    """An ORDER_CHANGE of a merchant-fulfilled one-item order reaching `status`: `Unshipped`
    (a new order, paid, stock committed), `Shipped` or `Canceled`."""
    day = 24 * 3600
    purchased = purchased_at if purchased_at is not None else now
    shipped = quantity if status == "Shipped" else 0
    summary: dict[str, Any] = {
        "MarketplaceId": subscriber.marketplace_id,
        "OrderStatus": status,
        "PurchaseDate": amazon_time(purchased),
        "DestinationPostalCode": "98109",
        "FulfillmentType": "MFN",
        "OrderType": "StandardOrder",
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": quantity if status == "Unshipped" else 0,
        "EarliestDeliveryDate": amazon_time(purchased + 3 * day),
        # The schema: "Returned only for seller-fulfilled orders that do not have a
        # PendingAvailability, Pending, or Canceled status."
        **({} if status == "Canceled" else {"LatestDeliveryDate": amazon_time(purchased + 7 * day)}),
        "EarliestShipDate": amazon_time(purchased),
        "LatestShipDate": amazon_time(purchased + 2 * day),
        "OrderPrograms": [],
        "ShippingPrograms": [],
        "OrderItems": [
            {
                "OrderItemId": order_item_id or new_order_item_id(),
                "SellerSKU": sku,
                "SupplySourceId": None,
                "OrderItemStatus": "Shipped" if status == "Shipped" else "Unshipped",
                "Quantity": quantity,
                "QuantityShipped": shipped,
                "IsBuyerRequestedCancel": False,
            }
        ],
    }
    return _envelope(
        "ORDER_CHANGE",
        {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": subscriber.seller_id,
                "AmazonOrderId": order_id,
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": {
                    "TimeOfOrderChange": amazon_time(now),
                    "ChangeReason": f"Order status changed to {status}",
                },
                "Summary": summary,
            }
        },
        subscriber,
        now,
    )


def mfn_quantity_change(subscriber: Subscriber, *, sku: str, quantity: int, now: float) -> dict[str, Any]:
    return _envelope(
        "LISTINGS_ITEM_MFN_QUANTITY_CHANGE",
        {"SellerId": subscriber.seller_id, "FulfillmentChannelCode": "DEFAULT", "Sku": sku, "Quantity": quantity},
        subscriber,
        now,
    )


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class DeliveryLog:
    """What each delivery attempt got back. Not locked itself: the store's lock guards it."""

    def __init__(self) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_LIMIT)

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def view(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self._entries]


def deliver_in_background(
    *,
    url: str,
    secret: str | None,
    notifications: list[tuple[dict[str, Any], int]],
    record: Callable[[dict[str, Any]], None],
) -> None:
    """POST each (notification, times) pair in order from a daemon thread; `record` gets each attempt."""

    def run() -> None:
        for notification, times in notifications:
            body = json.dumps(notification, separators=(",", ":")).encode()
            message_id = str(uuid.uuid4())
            for attempt in range(1, times + 1):
                record(_post(url, secret, notification, body, message_id, attempt))

    threading.Thread(target=run, name="sandbox-amazon-notifications", daemon=True).start()


def _post(
    url: str, secret: str | None, notification: dict[str, Any], body: bytes, message_id: str, attempt: int
) -> dict[str, Any]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Sandbox-Notification-Type": notification["NotificationType"],
        "X-Sandbox-Message-Id": message_id,
        "X-Sandbox-Receive-Count": str(attempt),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    entry: dict[str, Any] = {
        "notification_type": notification["NotificationType"],
        "notification_id": notification["NotificationMetadata"]["NotificationId"],
        "message_id": message_id,
        "attempt": attempt,
        "url": url,
        "order_id": notification["Payload"].get("OrderChangeNotification", {}).get("AmazonOrderId"),
        "time": iso(time.time()),
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as response:
            response.read()
            entry["status"] = response.status
    except urllib.error.HTTPError as error:
        entry["status"] = error.code
    except (urllib.error.URLError, OSError, ValueError) as error:
        entry["status"] = None
        entry["error"] = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
    return entry
