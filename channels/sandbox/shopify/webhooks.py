"""Webhooks a Shopify store sends: bodies, headers, signature, and background delivery.

Bodies are REST-format resources without their wrapper, shaped like Shopify's own examples
(`orders/create` like shopify-orders-create.rest-example.json, `orders/cancelled` like
shopify-orders-cancelled.rest-example.json, `refunds/create` like
shopify-refunds-create.rest-example.json, `inventory_levels/update` like
shopify-inventory-levels-update.rest-example.json). Headers are the ones Shopify's library
reads; `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(secret, raw body)). Every delivery gets
its own `X-Shopify-Webhook-Id`; redeliveries of one event share `X-Shopify-Event-Id`, which is
what Shopify tells receivers to de-duplicate on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..clock import iso
from ..order_book import Order, Refund

# Shopify expects an answer within 5 s (1 s to connect); a slower receiver is a failed delivery.
DELIVERY_TIMEOUT_S = 5.0
USER_AGENT = "Shopify-Captain-Hook"
DELIVERY_LOG_LIMIT = 10_000


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _money_set(amount: str, currency: str) -> dict[str, Any]:
    money = {"amount": amount, "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


@dataclass(frozen=True)
class Sale:
    """What the order webhook needs to know about one sale."""

    order_id: int
    number: int
    line_item_id: int
    customer_id: int
    variant_id: int
    product_id: int
    sku: str
    title: str
    quantity: int
    price: str
    currency: str
    shop_domain: str
    at: float
    location_id: int = 0


def order_body(sale: Sale) -> dict[str, Any]:
    """An `orders/create` (or `orders/paid`) body: a new, paid, unfulfilled one-line order."""
    currency = sale.currency
    total = str((Decimal(sale.price) * sale.quantity).quantize(Decimal("0.01")))
    zero = "0.00"
    created = iso(int(sale.at))
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{sale.shop_domain}/orders/{sale.order_id}").hex
    line_item = {
        "id": sale.line_item_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{sale.line_item_id}",
        "attributed_staffs": [],
        "current_quantity": sale.quantity,
        "fulfillable_quantity": sale.quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 0,
        "name": sale.title,
        "price": sale.price,
        "price_set": _money_set(sale.price, currency),
        "product_exists": True,
        "product_id": sale.product_id,
        "properties": [],
        "quantity": sale.quantity,
        "requires_shipping": True,
        "sku": sale.sku,
        "taxable": True,
        "title": sale.title,
        "total_discount": zero,
        "total_discount_set": _money_set(zero, currency),
        "variant_id": sale.variant_id,
        "variant_inventory_management": "shopify",
        "variant_title": None,
        "vendor": sale.shop_domain.split(".")[0],
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }
    email = f"customer{sale.customer_id}@example.com"
    return {
        "id": sale.order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{sale.order_id}",
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": None,
        "client_details": None,
        "closed_at": None,
        "confirmation_number": token[:9].upper(),
        "confirmed": True,
        "contact_email": email,
        "created_at": created,
        "currency": currency,
        "current_subtotal_price": total,
        "current_subtotal_price_set": _money_set(total, currency),
        "current_total_additional_fees_set": None,
        "current_total_discounts": zero,
        "current_total_discounts_set": _money_set(zero, currency),
        "current_total_duties_set": None,
        "current_total_price": total,
        "current_total_price_set": _money_set(total, currency),
        "current_total_tax": zero,
        "current_total_tax_set": _money_set(zero, currency),
        "customer_locale": "en",
        "device_id": None,
        "discount_codes": [],
        "duties_included": False,
        "email": email,
        "estimated_taxes": False,
        "financial_status": "paid",
        "fulfillment_status": None,
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": None,
        "merchant_of_record_app_id": None,
        "name": f"#{1000 + sale.number}",
        "note": None,
        "note_attributes": [],
        "number": sale.number,
        "order_number": 1000 + sale.number,
        "order_status_url": f"https://{sale.shop_domain}/orders/{token}/authenticate?key={token[::-1]}",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": ["manual"],
        "phone": None,
        "po_number": None,
        "presentment_currency": currency,
        "processed_at": created,
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": "web",
        "source_url": None,
        "subtotal_price": total,
        "subtotal_price_set": _money_set(total, currency),
        "tags": "",
        "tax_exempt": False,
        "tax_lines": [],
        "taxes_included": False,
        "test": False,
        "token": token,
        "total_cash_rounding_payment_adjustment_set": _money_set(zero, currency),
        "total_cash_rounding_refund_adjustment_set": _money_set(zero, currency),
        "total_discounts": zero,
        "total_discounts_set": _money_set(zero, currency),
        "total_line_items_price": total,
        "total_line_items_price_set": _money_set(total, currency),
        "total_outstanding": zero,
        "total_price": total,
        "total_price_set": _money_set(total, currency),
        "total_shipping_price_set": _money_set(zero, currency),
        "total_tax": zero,
        "total_tax_set": _money_set(zero, currency),
        "total_tip_received": zero,
        "total_weight": 0,
        "updated_at": created,
        "user_id": None,
        "billing_address": None,
        "customer": {
            "id": sale.customer_id,
            "email": email,
            "created_at": created,
            "updated_at": created,
            "first_name": None,
            "last_name": None,
            "state": "disabled",
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": None,
            "email_marketing_consent": {
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
            },
            "sms_marketing_consent": None,
            "tags": "",
            "currency": currency,
            "tax_exemptions": [],
            "admin_graphql_api_id": f"gid://shopify/Customer/{sale.customer_id}",
        },
        "discount_applications": [],
        "fulfillments": [],
        "line_items": [line_item],
        "payment_terms": None,
        "refunds": [],
        "shipping_address": None,
        "shipping_lines": [],
    }


def order_body_now(
    sale: Sale, order: Order, refunds: list[dict[str, Any]], *, fulfillment_id: int | None, at: float
) -> dict[str, Any]:
    """The order as it stands after cancels, refunds and fulfilment (`orders/cancelled`,
    `orders/fulfilled`): `cancelled_at`, `financial_status`, the line's remaining quantities,
    its fulfillment, and the refunds made so far, embedded as Shopify embeds them."""
    body = order_body(sale)
    [line] = order.lines
    [item] = body["line_items"]
    stamp = iso(int(at))
    if order.fully_refunded:
        body["financial_status"] = "refunded"
    elif line.refunded:
        body["financial_status"] = "partially_refunded"
    item["current_quantity"] = 0 if order.cancelled else line.refundable
    item["fulfillable_quantity"] = 0 if order.cancelled or order.fulfilled else line.refundable
    if order.cancelled:
        body["cancelled_at"] = stamp
        body["cancel_reason"] = "customer"
        # Cancelling a paid order refunds it; an unpaid one has its authorization voided.
        body["financial_status"] = "refunded" if order.paid else "voided"
    if order.fulfilled and fulfillment_id is not None:
        body["fulfillment_status"] = "fulfilled"
        item["fulfillment_status"] = "fulfilled"
        body["fulfillments"] = [
            {
                "id": fulfillment_id,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
                "created_at": stamp,
                "location_id": sale.location_id,
                "name": f"#{1000 + sale.number}.1",
                "order_id": sale.order_id,
                "service": "manual",
                "shipment_status": None,
                "status": "success",
                "tracking_company": None,
                "tracking_number": None,
                "tracking_numbers": [],
                "tracking_url": None,
                "tracking_urls": [],
                "updated_at": stamp,
                "line_items": [dict(item)],
            }
        ]
    body["refunds"] = [dict(refund) for refund in refunds]
    body["updated_at"] = stamp
    return body


def refund_body(
    sale: Sale, refund: Refund, *, ids: Iterator[int], fulfilled: bool, at: float
) -> dict[str, Any]:
    """A `refunds/create` body. `restock_type` as the Admin API defines it: `return` for
    fulfilled units put back, `cancel` for unfulfilled ones, `no_restock` when kept off the shelf."""
    currency = sale.currency
    stamp = iso(int(at))
    zero = "0.00"
    refund_id, transaction_id = next(ids), next(ids)
    [item] = order_body(sale)["line_items"]
    refund_lines = []
    total = Decimal(0)
    for line, quantity in refund.lines:
        subtotal = (Decimal(sale.price) * quantity).quantize(Decimal("0.01"))
        total += subtotal
        restock_type = ("return" if fulfilled else "cancel") if refund.restock else "no_restock"
        refund_lines.append(
            {
                "id": next(ids),
                "quantity": quantity,
                "line_item_id": int(line.line_id),
                "location_id": sale.location_id if refund.restock else None,
                "restock_type": restock_type,
                "subtotal": float(subtotal),
                "total_tax": 0.0,
                "subtotal_set": _money_set(str(subtotal), currency),
                "total_tax_set": _money_set(zero, currency),
                "line_item": dict(item),
            }
        )
    amount = str(total.quantize(Decimal("0.01")))
    return {
        "id": refund_id,
        "order_id": sale.order_id,
        "created_at": stamp,
        "note": None,
        "user_id": None,
        "processed_at": stamp,
        "duties": [],
        "total_duties_set": _money_set(zero, currency),
        "return": None,
        "restock": refund.restock,
        "additional_fees": [],
        "total_additional_fees_set": _money_set(zero, currency),
        "refund_shipping_lines": [],
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_adjustments": [],
        "refund_line_items": refund_lines,
        "transactions": [
            {
                "id": transaction_id,
                "order_id": sale.order_id,
                "kind": "refund",
                "gateway": "manual",
                "status": "success",
                "message": "Refunded",
                "created_at": stamp,
                "test": False,
                "authorization": None,
                "location_id": None,
                "user_id": None,
                "parent_id": None,
                "processed_at": stamp,
                "device_id": None,
                "error_code": None,
                "source_name": "web",
                "receipt": {},
                "amount": amount,
                "currency": currency,
                "payment_id": f"r{refund_id}",
                "manual_payment_gateway": True,
                "amount_rounding": None,
                "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{transaction_id}",
            }
        ],
    }


def inventory_level_body(item_id: int, location_id: int, available: int, level_id: int, at: float) -> dict[str, Any]:
    """An `inventory_levels/update` body."""
    return {
        "inventory_item_id": item_id,
        "location_id": location_id,
        "available": available,
        "updated_at": iso(int(at)),
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{level_id}?inventory_item_id={item_id}",
    }


@dataclass(frozen=True)
class Webhook:
    """One event to deliver (possibly several times)."""

    topic: str
    body: dict[str, Any]
    event_id: str


@dataclass(frozen=True)
class Destination:
    url: str
    secret: str
    shop_domain: str
    api_version: str


class WebhookSender:
    """Delivers a store's webhooks from a background thread and logs every attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_LIMIT)

    def send(self, destination: Destination, webhooks: list[Webhook], deliveries: int = 1) -> None:
        """Deliver each webhook `deliveries` times, in order, without blocking the caller."""
        if webhooks:
            thread = threading.Thread(
                target=self._deliver_all, args=(destination, webhooks, deliveries), name="shopify-webhooks", daemon=True
            )
            thread.start()

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def _deliver_all(self, destination: Destination, webhooks: list[Webhook], deliveries: int) -> None:
        for webhook in webhooks:
            raw = json.dumps(webhook.body, separators=(",", ":")).encode()
            for attempt in range(1, deliveries + 1):
                self._deliver(destination, webhook, raw, attempt)

    def _deliver(self, destination: Destination, webhook: Webhook, raw: bytes, attempt: int) -> None:
        webhook_id = str(uuid.uuid4())
        triggered_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shopify-Topic": webhook.topic,
            "X-Shopify-Hmac-Sha256": signature(raw, destination.secret),
            "X-Shopify-Shop-Domain": destination.shop_domain,
            "X-Shopify-API-Version": destination.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": webhook.event_id,
            "X-Shopify-Triggered-At": triggered_at,
        }
        entry: dict[str, Any] = {
            "topic": webhook.topic,
            "event_id": webhook.event_id,
            "webhook_id": webhook_id,
            "attempt": attempt,
            "url": destination.url,
            "sent_at": iso(time.time()),
            "status": None,
            "error": None,
        }
        started = time.monotonic()
        request = urllib.request.Request(destination.url, data=raw, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as response:
                response.read()
                entry["status"] = response.status
        except urllib.error.HTTPError as error:
            entry["status"] = error.code
            entry["error"] = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, ValueError) as error:
            entry["error"] = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
        with self._lock:
            self._log.append(entry)
