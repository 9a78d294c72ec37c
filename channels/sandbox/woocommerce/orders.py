"""WooCommerce orders made by the sandbox's `sales` control call, and their webhook deliveries.

The order body is the v3 order resource, shaped like the docs example in
`reference/samples/woocommerce-order-created.json` ("exactly the same as if requested via the
REST API"). A delivery is what `WC_Webhook::deliver` sends: `trim(wp_json_encode(payload))`
(compact, slashes escaped as `\\/`, non-ASCII as `\\uXXXX`), the `X-WC-Webhook-*` headers, and
`X-WC-Webhook-Signature` = base64(HMAC-SHA256(secret, raw body)). WooCommerce does not retry
a failed delivery; it disables the webhook after more than 5 consecutive failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from .catalog import Product, wp_datetime

WC_VERSION = "9.8.1"
WP_VERSION = "6.8"
USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
DELIVERY_TIMEOUT_S = 10.0
# WC_Webhook::failed_delivery disables the webhook once failure_count exceeds this.
MAX_CONSECUTIVE_FAILURES = 5
TOPICS = ("order.created", "order.updated")


def money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def order_resource(
    *, order_id: int, number: str, product: Product, parent: Product | None, quantity: int, now: float, site_url: str
) -> dict[str, Any]:
    """The order as `GET /wc/v3/orders/{id}` shows it right after checkout."""
    unit_price = Decimal(product.price or "0")
    line_total = unit_price * quantity
    created = wp_datetime(now)
    name = product.name if parent is None else f"{parent.name} - {product.name}"
    return {
        "id": order_id,
        "parent_id": 0,
        "number": number,
        "order_key": f"wc_order_{uuid.uuid4().hex[:13]}",
        "created_via": "checkout",
        "version": WC_VERSION,
        "status": "processing",
        "currency": "USD",
        "date_created": created,
        "date_created_gmt": created,
        "date_modified": created,
        "date_modified_gmt": created,
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "0.00",
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": money(line_total),
        "total_tax": "0.00",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": "",
        "billing": {
            "first_name": "Sandbox",
            "last_name": "Customer",
            "company": "",
            "address_1": "1 Test Street",
            "address_2": "",
            "city": "Testville",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
            "email": "customer@example.com",
            "phone": "",
        },
        "shipping": {
            "first_name": "Sandbox",
            "last_name": "Customer",
            "company": "",
            "address_1": "1 Test Street",
            "address_2": "",
            "city": "Testville",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
        },
        "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer",
        "transaction_id": "",
        "date_paid": created,
        "date_paid_gmt": created,
        "date_completed": None,
        "date_completed_gmt": None,
        "cart_hash": "",
        "meta_data": [],
        "line_items": [
            {
                "id": order_id * 10 + 1,
                "name": name,
                "product_id": parent.id if parent is not None else product.id,
                "variation_id": product.id if parent is not None else 0,
                "quantity": quantity,
                "tax_class": "",
                "subtotal": money(line_total),
                "subtotal_tax": "0.00",
                "total": money(line_total),
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
                "sku": product.sku,
                # A number, not a string, in WooCommerce's own example.
                "price": float(unit_price) if unit_price != unit_price.to_integral() else int(unit_price),
            }
        ],
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "_links": {
            "self": [{"href": f"{site_url}wp-json/wc/v3/orders/{order_id}"}],
            "collection": [{"href": f"{site_url}wp-json/wc/v3/orders"}],
        },
    }


def wp_json_encode(payload: Any) -> bytes:
    """PHP's `json_encode` without flags: compact, `\\/` for slashes, `\\uXXXX` for non-ASCII."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery_headers(
    *, topic: str, source: str, webhook_id: int, delivery_id: str, secret: str, body: bytes
) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": signature(secret, body),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


def new_delivery_id() -> str:
    """Current WooCommerce sends `wp_hash(webhook_id . time)`: 32 hex characters."""
    return uuid.uuid4().hex


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST once; (HTTP status, None) or (None, why it could not be delivered).

    `http.client` rather than urllib, which would rewrite `X-WC-Webhook-Topic` as
    `X-wc-webhook-topic`: header names are case-insensitive, but a receiver may still look
    them up as WooCommerce spells them."""
    target = urlsplit(url)
    connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    connection = connection_class(target.hostname or "localhost", target.port, timeout=DELIVERY_TIMEOUT_S)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, None
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        connection.close()
