"""Each kind's webhook parser reads the channels' own published payloads
(`shared/reference/samples/`), and refuses what is not theirs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from channels.inbound import amazon, shopify, woocommerce
from channels.inbound.base import InvalidSignature, LineStatus, MalformedPayload
from tests.support.reference import reference_file


def _sample(name: str, wrapper: str | None = None) -> bytes:
    data = json.loads(reference_file(f"samples/{name}").read_text())
    return json.dumps(data[wrapper] if wrapper else data).encode()


def _signed(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _shopify_headers(topic: str, event_id: str = "evt-1") -> dict:
    return {"X-Shopify-Topic": topic, "X-Shopify-Event-Id": event_id, "X-Shopify-Triggered-At": "2026-11-27T10:00:00.000Z"}


def test_shopify_paid_and_fulfilled_order_reports_each_line_by_sku():
    parsed = shopify.parse(headers=_shopify_headers("orders/create"), body=_sample("shopify-orders-create.rest-example.json", "order"))

    assert parsed.key == "evt-1" and parsed.order_id == "1073459972"
    assert [(line.sku, line.quantity, line.status) for line in parsed.lines] == [("IPOD2009BLACK", 1, LineStatus.FULFILLED)]
    assert parsed.triggered_at is not None


def test_shopify_cancelled_order_cancels_every_line():
    parsed = shopify.parse(headers=_shopify_headers("orders/cancelled"), body=_sample("shopify-orders-cancelled.rest-example.json", "order"))

    assert {line.status for line in parsed.lines} == {LineStatus.CANCELLED}
    assert [line.sku for line in parsed.lines] == ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]


def test_shopify_refund_restocks_only_lines_put_back_on_the_shelf():
    no_restock = shopify.parse(headers=_shopify_headers("refunds/create"), body=_sample("shopify-refunds-create.rest-example.json", "refund"))
    legacy = shopify.parse(headers=_shopify_headers("refunds/create"), body=_sample("shopify-refund-legacy-restock.rest-example.json", "refund"))

    assert no_restock.restocks == () and no_restock.order_id == "450789469"
    assert [(r.line_id, r.sku, r.quantity) for r in legacy.restocks] == [
        ("703073504", "IPOD2008BLACK", 1), ("466157049", "IPOD2008GREEN", 1),
    ]


def test_shopify_custom_line_item_has_no_sku_and_product_edits_are_ignored():
    custom = shopify.parse(headers=_shopify_headers("orders/create"), body=_sample("shopify-order-custom-line-item.rest-example.json", "order"))
    product = shopify.parse(headers=_shopify_headers("products/update"), body=_sample("shopify-products-update.rest-example.json", "product"))

    assert [line.sku for line in custom.lines] == [""]
    assert product.ignored and "not written back" in product.ignored


def test_shopify_inventory_level_names_the_inventory_item_as_the_adapter_stores_it():
    parsed = shopify.parse(headers=_shopify_headers("inventory_levels/update"),
                           body=_sample("shopify-inventory-levels-update.rest-example.json", "inventory_level"))

    assert parsed.stock[0].external_id == "gid://shopify/InventoryItem/808950810" and parsed.stock[0].available == 6


def test_shopify_signature_is_checked_on_the_raw_body():
    body = _sample("shopify-orders-create.rest-example.json", "order")
    shopify.verify(secret="s3cret", headers={"X-Shopify-Hmac-Sha256": _signed("s3cret", body)}, body=body)

    with pytest.raises(InvalidSignature):
        shopify.verify(secret="s3cret", headers={"X-Shopify-Hmac-Sha256": _signed("s3cret", body)}, body=body + b" ")
    with pytest.raises(InvalidSignature):
        shopify.verify(secret="s3cret", headers={}, body=body)
    with pytest.raises(InvalidSignature, match="webhook_secret"):
        shopify.verify(secret="", headers={"X-Shopify-Hmac-Sha256": _signed("", body)}, body=body)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"id": 1}', "line_items"),
    (b'{"id": 1, "line_items": [{"id": 2, "sku": "A", "quantity": -1}]}', r"line_items\[0\].quantity"),
])
def test_shopify_malformed_order_is_refused_naming_the_field(body, message):
    with pytest.raises(MalformedPayload, match=message):
        shopify.parse(headers=_shopify_headers("orders/create"), body=body)


def test_woocommerce_order_lines_follow_the_order_status():
    created = woocommerce.parse(headers={"X-WC-Webhook-Topic": "order.created"}, body=reference_file("samples/woocommerce-order-created.json").read_bytes())
    updated = woocommerce.parse(headers={"X-WC-Webhook-Topic": "order.updated"}, body=reference_file("samples/woocommerce-order-updated.json").read_bytes())

    assert created.order_id == "727" and [line.status for line in created.lines] == [LineStatus.PAID, LineStatus.PAID]
    assert {line.line_id for line in updated.lines} and updated.key != created.key


def test_woocommerce_refunded_order_reports_its_lines_refunded_not_cancelled():
    order = json.loads(reference_file("samples/woocommerce-order-updated.json").read_text())
    order["status"] = "refunded"

    parsed = woocommerce.parse(headers={"X-WC-Webhook-Topic": "order.updated"}, body=json.dumps(order).encode())

    assert parsed.lines and {line.status for line in parsed.lines} == {LineStatus.REFUNDED}


def test_woocommerce_creation_ping_is_recognised_and_signature_checked():
    assert woocommerce.is_ping(headers={}, body=b"webhook_id=17")
    assert not woocommerce.is_ping(headers={"X-WC-Webhook-Topic": "order.created"}, body=b"webhook_id=17")
    body = b'{"id": 1}'
    with pytest.raises(InvalidSignature):
        woocommerce.verify(secret="k", headers={"X-WC-Webhook-Signature": _signed("other", body)}, body=body)


def test_amazon_order_change_reads_items_and_dedupes_on_notification_id():
    parsed = amazon.parse(headers={}, body=reference_file("samples/amazon-order-change.example.json").read_bytes())

    assert parsed.key == "d0e9e693-c3ad-4373-979f-ed4ec98dd746" and parsed.order_id == "903-8868176-2219830"
    assert [(line.line_id, line.sku, line.quantity, line.status) for line in parsed.lines] == [
        ("OIID34853450", "SellerSKUID1", 10, LineStatus.PAID),
    ]


def test_amazon_quantity_change_is_a_stock_report():
    parsed = amazon.parse(headers={}, body=reference_file("samples/amazon-listings-item-mfn-quantity-change.example.json").read_bytes())

    assert parsed.stock and parsed.stock[0].sku and parsed.lines == ()
