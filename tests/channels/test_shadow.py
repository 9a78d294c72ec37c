"""Shadow channels (`mode: shadow`): everything runs but the final call. What would have been
sent is logged per SKU, the store is not called at all, and a diff against the store's live
values (read, never written) lists exactly the fields that differ."""
from __future__ import annotations

import pytest
from django.urls import reverse

from channels.models import SyncAttempt
from tests.factories import product_with_variants, sandbox_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack

SKUS = ["SH-1", "SH-2", "SH-3"]


def _logged(channel, skus, aspects=("price", "inventory")):
    """Every (SKU, aspect) has a shadow attempt with its payload."""
    rows = set(
        SyncAttempt.objects.filter(channel=channel, status="ignored", error_code="shadow", payload__isnull=False)
        .values_list("sku", "event_type")
    )
    return all((sku, aspect) in rows for sku in skus for aspect in aspects)


ORDER_POLLS = ("/V1/orders", "/wp-json/wc/v3/orders")
ADMIN_TOKEN = "/integration/admin/token"


def _outbound(live, kind: str, store: str) -> list[dict]:
    """The store's request log without the inbound side's order polling: beat polls Magento's
    orders (they come by no webhook) and WooCommerce's beside its webhooks, a read that is
    not the shadow path's, and Magento's asks for an admin token first. The log is read once
    every token has its poll logged after it (a read between the two would show the token's
    POST alone); a token no poll followed is the shadow path's, and times this out."""
    def polled(entry) -> bool:
        return any(poll in entry["path"] for poll in ORDER_POLLS)

    def settled():
        entries = live.sandbox.requests(kind, store)
        tokens = [e["seq"] for e in entries if ADMIN_TOKEN in e["path"]]
        polls = [e["seq"] for e in entries if polled(e)]
        return (entries,) if not tokens or (polls and max(polls) > max(tokens)) else None

    (entries,) = wait_until(settled, timeout=10, message="an admin token was issued and no order poll followed it")
    return [e for e in entries if not polled(e) and ADMIN_TOKEN not in e["path"]]


@pytest.mark.parametrize("kind", ["woocommerce", "shopify", "amazon", "magento"])
def test_a_shadow_channel_logs_what_it_would_send_and_makes_no_call_to_the_store(live, store_name, kind):
    # given: a store holding the SKUs, and a shadow channel over it
    for sku in SKUS:
        live.sandbox.put_item(kind, store_name, sku, price="1.00", available=0, title=sku)
    channel = sandbox_channel(live, kind, store_name, mode="shadow")

    # when: the PIM makes the SKUs (price, stock and content owed to every channel)
    product_with_variants(handle="shadow", skus=SKUS, price="12.50", stock=4)

    # then: each SKU's would-be payload is logged, and the store was never asked anything
    wait_until(lambda: _logged(channel, SKUS), timeout=30, message="the shadow attempts were never logged")
    assert _outbound(live, kind, store_name) == []
    for sku in SKUS:
        assert live.sandbox.item(kind, store_name, sku)["price"] in ("1.00", "1", "1.0")
    price = SyncAttempt.objects.filter(channel=channel, sku="SH-2", event_type="price", status="ignored").first()
    assert "12.5" in str(price.payload), price.payload


def test_the_shadow_diff_lists_exactly_the_fields_that_differ_and_only_reads(live, store_name, ops, admin_client):
    # given: a WooCommerce store where SH-1 matches the PIM, SH-2's price and SH-3's stock differ
    kind = "woocommerce"
    live.sandbox.put_item(kind, store_name, "SH-1", price="12.50", available=4, title="SH-1")
    live.sandbox.put_item(kind, store_name, "SH-2", price="9.99", available=4, title="SH-2")
    live.sandbox.put_item(kind, store_name, "SH-3", price="12.50", available=7, title="SH-3")
    channel = sandbox_channel(live, kind, store_name, mode="shadow")
    product_with_variants(handle="shadow", skus=SKUS, price="12.50", stock=4)
    wait_until(lambda: _logged(channel, SKUS), timeout=30, message="the shadow attempts were never logged")
    assert _outbound(live, kind, store_name) == []

    # when
    response = ops.get(f"/api/v1/channels/{channel.pk}/shadow-diff/")
    one = ops.get(f"/api/v1/channels/{channel.pk}/shadow-diff/", {"sku": "SH-2"})

    # then: the diff, per SKU
    assert response.status_code == 200, response.content
    rows = {row["sku"]: row for row in response.json()["results"]}
    assert {sku: rows[sku]["differs"] for sku in SKUS} == {"SH-1": [], "SH-2": ["price"], "SH-3": ["available"]}
    assert rows["SH-2"]["would_send"]["price"] == "12.50" and rows["SH-2"]["live"]["price"] == "9.99"
    assert rows["SH-3"]["would_send"]["available"] == 4 and rows["SH-3"]["live"]["available"] == 7
    assert rows["SH-2"]["last_payload"]["path"] == "/wp-json/wc/v3/products/batch"
    price = SyncAttempt.objects.filter(channel=channel, sku="SH-2", event_type="price", status="ignored").first()
    assert price.payload["update"]["regular_price"] == "12.50"
    assert [row["sku"] for row in one.json()["results"]] == ["SH-2"]
    # and reading was all it did: no write reached the store
    methods = {entry["method"] for entry in live.sandbox.requests(kind, store_name)}
    assert methods == {"GET"}, methods
    assert live.sandbox.item(kind, store_name, "SH-2")["price"] == "9.99"
    # the admin view shows the same
    page = admin_client.get(reverse("admin:channels_shadow_diff", args=[channel.pk]))
    assert page.status_code == 200 and "SH-3" in page.content.decode() and "available" in page.content.decode()


def test_an_unknown_shadow_diff_parameter_is_a_400_naming_it(live, store_name, ops):
    channel = sandbox_channel(live, "woocommerce", store_name, mode="shadow")

    response = ops.get(f"/api/v1/channels/{channel.pk}/shadow-diff/", {"skus": "SH-1"})

    assert response.status_code == 400 and "skus" in response.json()["errors"]
