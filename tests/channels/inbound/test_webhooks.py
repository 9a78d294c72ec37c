"""Sales come back from the channels as their own signed webhooks, over real HTTP, into the
ledger, once each: the sandbox stores sell (their `sales` control sends the real order
webhook to a running syncsvc web server), a real Celery worker applies them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid

import pytest
import requests

from channels.models import InboundEvent, OrderLine, SyncAttempt
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_totals
from tests.factories import product_with_variants, sandbox_channel, webhook_channel
from tests.support.reference import reference_file
from tests.support.sandbox import wait_until
from tests.support.stock import wait_stock_shown

pytestmark = pytest.mark.stack
SECRET = "whsec-test"


@pytest.fixture
def receiver(live, web_url) -> str:
    """The base URL of a syncsvc web server the sandbox stores can post their webhooks to."""
    return web_url


def _stock(sku: str) -> tuple[int, int]:
    return stock_totals(sku=sku) or (0, 0)


def _signed_post(url: str, body: bytes, headers: dict, secret: str = SECRET, header: str = "X-Shopify-Hmac-Sha256"):
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return requests.post(url, data=body, headers={"Content-Type": "application/json", header: signature, **headers}, timeout=10)


def _shopify_headers(topic: str) -> dict:
    return {"X-Shopify-Topic": topic, "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Shop-Domain": "test.myshopify.com",
            "X-Shopify-API-Version": "2026-10", "X-Shopify-Webhook-Id": str(uuid.uuid4())}


def _shopify_store(live, receiver, store_name, sku, available, **settings):
    channel = sandbox_channel(live, "shopify", store_name, receiver_url=receiver, settings=settings)
    live.sandbox.put_item("shopify", store_name, sku, price="10.00", available=available, title=sku)
    return channel


def _wait_shown(live, sku: str, expected: dict[tuple[str, str], int]) -> None:
    wait_stock_shown(live.sandbox, sku, expected)


def test_two_sales_on_two_channels_at_once_both_count_and_a_third_channel_sees_the_rest(live, receiver, store_name):
    # given: 5 in stock, shown to Shopify, Amazon and a webhook channel holding 1 back
    shopify = _shopify_store(live, receiver, f"{store_name}-s", "LAST-1", 5)
    amazon = sandbox_channel(live, "amazon", f"{store_name}-a", receiver_url=receiver)
    live.sandbox.put_item("amazon", f"{store_name}-a", "LAST-1", price="10.00", available=5, title="LAST-1")
    webhook_channel(live, f"{store_name}-w", safety_stock=1)
    product_with_variants(handle="last", skus=["LAST-1"], stock=5)
    _wait_shown(live, "LAST-1", {("shopify", f"{store_name}-s"): 5, ("amazon", f"{store_name}-a"): 5,
                                 ("webhook", f"{store_name}-w"): 4})

    # when: each store sells one unit, within 100 ms of each other
    threads = [
        threading.Thread(target=live.sandbox.sales, args=("shopify", f"{store_name}-s"), kwargs={"sku": "LAST-1", "quantity": 1}),
        threading.Thread(target=live.sandbox.sales, args=("amazon", f"{store_name}-a"), kwargs={"sku": "LAST-1", "quantity": 1}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: 3 left, not 4, and the third channel is shown 3 - 1 within a second of the last sale
    wait_until(lambda: _stock("LAST-1") == (3, 0), message="both sales did not reach the ledger")
    sales = StockMovement.objects.filter(variant__sku="LAST-1", reason="sale")
    assert sorted(m.source for m in sales) == sorted([f"channel:{shopify.pk}", f"channel:{amazon.pk}"])
    wait_until(lambda: live.sandbox.item("webhook", f"{store_name}-w", "LAST-1")["available"] == 2,
               message="the webhook channel never saw 3 - 1")
    # The push that delivered 2 counts its latency from the first sale it carries (both sales
    # may have coalesced into it): from the commit to the channel's acknowledgement.
    # (The attempt row commits just after the store's answer: wait for it.)
    last_sale = max(m.created_at for m in sales)
    push = wait_until(lambda: SyncAttempt.objects.filter(
        sku="LAST-1", event_type="inventory", status="success", channel__kind="webhook", acknowledged_at__gte=last_sale,
    ).order_by("id").first(), message="the push after the last sale was not logged")
    assert push.latency_ms < 1000, push.latency_ms


def test_a_webhook_delivered_three_times_is_applied_once(live, receiver, store_name):
    # given
    channel = _shopify_store(live, receiver, store_name, "DUP-1", 10)
    product_with_variants(handle="dup", skus=["DUP-1"], stock=10)
    _wait_shown(live, "DUP-1", {("shopify", store_name): 10})

    # when: the store delivers its orders/create three times (same X-Shopify-Event-Id)
    live.sandbox.sales("shopify", store_name, sku="DUP-1", quantity=2, deliveries=3)

    # then
    wait_until(lambda: InboundEvent.objects.filter(channel=channel, deliveries=3).exists(), message="three deliveries not seen")
    wait_until(lambda: _stock("DUP-1") == (8, 0), message="the sale was not applied")
    assert InboundEvent.objects.filter(channel=channel).count() == 1
    assert StockMovement.objects.filter(variant__sku="DUP-1", reason="sale").count() == 1


def test_woocommerce_order_webhook_is_a_sale(live, receiver, store_name):
    # given
    sandbox_channel(live, "woocommerce", store_name, receiver_url=receiver)
    live.sandbox.put_item("woocommerce", store_name, "WOO-1", price="10.00", available=4, title="WOO-1")
    product_with_variants(handle="woo", skus=["WOO-1"], stock=4)
    _wait_shown(live, "WOO-1", {("woocommerce", store_name): 4})

    # when
    live.sandbox.sales("woocommerce", store_name, sku="WOO-1", quantity=1, deliveries=2)

    # then
    wait_until(lambda: _stock("WOO-1") == (3, 0), message="the WooCommerce sale was not applied")
    assert StockMovement.objects.filter(variant__sku="WOO-1", reason="sale").count() == 1


def test_bad_signature_is_401_and_malformed_body_is_400_and_nothing_is_written(live, receiver, store_name):
    # given
    channel = _shopify_store(live, receiver, store_name, "SIG-1", 5)
    product_with_variants(handle="sig", skus=["SIG-1"], stock=5)
    url = f"{receiver}/webhooks/{channel.pk}/"
    order = json.loads(reference_file("samples/shopify-orders-create.rest-example.json").read_text())["order"]
    order["line_items"][0]["sku"] = "SIG-1"
    body = json.dumps(order).encode()

    # when
    forged = _signed_post(url, body, _shopify_headers("orders/create"), secret="not-the-secret")
    truncated = _signed_post(url, body[: len(body) // 2], _shopify_headers("orders/create"))
    wrong_type = requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=10)
    oversized = requests.post(url, data=b"{" + b" " * (1024 * 1024 + 1) + b"}",
                              headers={"Content-Type": "application/json"}, timeout=10)
    unknown = _signed_post(f"{receiver}/webhooks/999999/", body, _shopify_headers("orders/create"))

    # then
    assert forged.status_code == 401 and "signature" in forged.json()["detail"]
    assert truncated.status_code == 400 and "JSON" in truncated.json()["detail"]
    assert wrong_type.status_code == 415
    assert oversized.status_code == 413
    assert unknown.status_code == 404
    assert not InboundEvent.objects.exists() and not OrderLine.objects.exists()
    assert _stock("SIG-1") == (5, 0) and not StockMovement.objects.filter(reason="sale").exists()


def test_an_unknown_sku_is_kept_for_a_person_not_dropped(live, receiver, store_name):
    # given: the store sells a SKU the catalog does not have
    channel = _shopify_store(live, receiver, store_name, "GHOST-1", 3)

    # when
    live.sandbox.sales("shopify", store_name, sku="GHOST-1", quantity=1)

    # then
    event = wait_until(
        lambda: InboundEvent.objects.filter(channel=channel, status=InboundEvent.Status.NEEDS_ATTENTION).first(),
        message="the event was not flagged",
    )
    assert "GHOST-1" in event.detail
    assert OrderLine.objects.get(channel=channel, sku="GHOST-1").state == OrderLine.State.UNKNOWN_SKU


def test_reservation_then_cancel_releases_the_units(live, receiver, store_name):
    # given: the channel sells units only when the order is fulfilled; until then they are held
    channel = _shopify_store(live, receiver, store_name, "RES-1", 5, commit_on="fulfilled")
    product_with_variants(handle="res", skus=["RES-1"], stock=5)
    _wait_shown(live, "RES-1", {("shopify", store_name): 5})
    sale = live.sandbox.sales("shopify", store_name, sku="RES-1", quantity=2)
    wait_until(lambda: _stock("RES-1") == (5, 2), message="the order was not reserved")

    # when: the shop cancels the order (and sends its own orders/cancelled webhook)
    live.sandbox.order_action("shopify", store_name, sale["order_id"], "cancel")

    # then
    wait_until(lambda: _stock("RES-1") == (5, 0), message="the cancel did not release the reservation")
    assert OrderLine.objects.get(channel=channel, sku="RES-1").state == OrderLine.State.CANCELLED


def test_a_reservation_is_committed_when_the_shop_fulfils_the_order(live, receiver, store_name):
    # given: the channel sells units only when the order is fulfilled; the sale holds them
    channel = _shopify_store(live, receiver, store_name, "FUL-1", 5, commit_on="fulfilled")
    product_with_variants(handle="ful", skus=["FUL-1"], stock=5)
    _wait_shown(live, "FUL-1", {("shopify", store_name): 5})
    sale = live.sandbox.sales("shopify", store_name, sku="FUL-1", quantity=2)
    wait_until(lambda: _stock("FUL-1") == (5, 2), message="the order was not reserved")

    # when: the shop ships it (its orders/fulfilled webhook)
    live.sandbox.order_action("shopify", store_name, sale["order_id"], "fulfill")

    # then: the hold became a sale
    wait_until(lambda: _stock("FUL-1") == (3, 0), message="the fulfilment did not commit the reservation")
    assert OrderLine.objects.get(channel=channel, sku="FUL-1").state == OrderLine.State.COMMITTED
    assert StockMovement.objects.filter(variant__sku="FUL-1", reason="sale").count() == 1


def test_an_expired_reservation_is_released_by_beat(live, receiver, store_name):
    # given
    channel = _shopify_store(live, receiver, store_name, "EXP-1", 5, commit_on="fulfilled", reservation_ttl_s=1)
    product_with_variants(handle="exp", skus=["EXP-1"], stock=5)
    _wait_shown(live, "EXP-1", {("shopify", store_name): 5})

    # when
    live.sandbox.sales("shopify", store_name, sku="EXP-1", quantity=1)

    # then: held, then released when the hold runs out
    wait_until(lambda: OrderLine.objects.filter(channel=channel, sku="EXP-1").exists(), message="no order line")
    wait_until(lambda: _stock("EXP-1") == (5, 0) and OrderLine.objects.get(channel=channel).state == OrderLine.State.EXPIRED,
               timeout=15, message="the reservation never expired")
    assert StockMovement.objects.filter(variant__sku="EXP-1", reason="release").count() == 1


def test_a_refund_with_restock_returns_the_units_once(live, receiver, store_name):
    # given: a sale
    channel = _shopify_store(live, receiver, store_name, "REF-1", 5)
    product_with_variants(handle="ref", skus=["REF-1"], stock=5)
    _wait_shown(live, "REF-1", {("shopify", store_name): 5})
    sale = live.sandbox.sales("shopify", store_name, sku="REF-1", quantity=2)
    wait_until(lambda: _stock("REF-1") == (3, 0), message="the sale was not applied")

    # when: the shop refunds one unit and puts it back on the shelf; its refunds/create is
    # delivered twice
    live.sandbox.order_action("shopify", store_name, sale["order_id"], "refund",
                              lines=[{"sku": "REF-1", "quantity": 1}], restock=True, deliveries=2)

    # then
    wait_until(lambda: InboundEvent.objects.filter(channel=channel, topic="refunds/create", deliveries=2).exists(),
               message="two deliveries of the refund not seen")
    wait_until(lambda: _stock("REF-1") == (4, 0), message="the refund did not restock")
    assert StockMovement.objects.filter(variant__sku="REF-1", reason="return").count() == 1


def test_orders_paid_before_orders_create_is_one_sale(live, receiver, store_name):
    # given
    channel = _shopify_store(live, receiver, store_name, "OOO-1", 5)
    product_with_variants(handle="ooo", skus=["OOO-1"], stock=5)
    order = json.loads(reference_file("samples/shopify-orders-create.rest-example.json").read_text())["order"]
    order.update(fulfillment_status=None, financial_status="pending")
    order["line_items"][0].update(sku="OOO-1", quantity=1, fulfillment_status=None)
    url = f"{receiver}/webhooks/{channel.pk}/"

    # when: the paid update arrives first, the creation (unpaid) after it
    paid = dict(order, financial_status="paid")
    _signed_post(url, json.dumps(paid).encode(), _shopify_headers("orders/paid"))
    wait_until(lambda: _stock("OOO-1") == (4, 0), message="the paid order was not applied")
    _signed_post(url, json.dumps(order).encode(), _shopify_headers("orders/create"))

    # then: the late creation does not reserve on top of the sale
    wait_until(lambda: InboundEvent.objects.filter(channel=channel, status="applied").count() == 2, message="not processed")
    assert _stock("OOO-1") == (4, 0)
    assert list(StockLevel.objects.filter(variant__sku="OOO-1").values_list("reserved", flat=True)) == [0]


def test_our_own_stock_write_echoed_back_is_recognised_and_a_merchant_edit_is_not_written_back(live, receiver, store_name):
    # given: a store that announces every level change (inventory_levels/update)
    channel = _shopify_store(live, receiver, store_name, "ECHO-1", 0)
    live.sandbox.config("shopify", store_name, send_inventory_webhooks=True)
    product_with_variants(handle="echo", skus=["ECHO-1"], stock=7)

    # when: our push sets 7 there (the store echoes it), then a merchant sets 3 in Shopify's admin
    echo = wait_until(lambda: InboundEvent.objects.filter(channel=channel, topic="inventory_levels/update",
                                                          detail__contains="echo").first(),
                      message="our write's echo was not recognised")
    live.sandbox.put_item("shopify", store_name, "ECHO-1", price="10.00", available=3, title="ECHO-1")

    # then: neither moved the ledger
    edited = wait_until(lambda: InboundEvent.objects.filter(channel=channel, topic="inventory_levels/update",
                                                            detail__contains="changed on the channel").first(),
                        message="the merchant's edit was not reported")
    assert echo.status == edited.status == InboundEvent.Status.IGNORED
    assert "3 there, 7 here" in edited.detail
    assert _stock("ECHO-1") == (7, 0)
    assert not StockMovement.objects.filter(variant__sku="ECHO-1").exclude(reason="receipt").exists()
