"""Outbound stock never overwrites a sale the store made and we have not seen yet."""
from __future__ import annotations

import threading
import time

import pytest

from channels.adapters.registry import adapter_class
from channels.marks import next_due_in
from channels.models import Channel
from channels.ratelimit import bucket_observe
from channels.services.flush import flush_channel
from inventory import services
from tests.factories import product_with_variants
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.django_db


def _store_in_sync_at_10(sandbox, store_name: str, name: str, **store_config) -> Channel:
    """A Shopify store and a channel to it, SKU `<NAME>-1` at 10 units in both."""
    control, url = sandbox
    sku, token = f"{name.upper()}-1", f"shpat_{name}"
    control.config("shopify", store_name, access_token=token, webhook_url="http://127.0.0.1:9/", webhook_secret="x",
                   **store_config)
    control.put_item("shopify", store_name, sku, price="10.00", available=10, title=sku)
    channel = Channel(name=name, kind="shopify", base_url=f"{url}/shopify/{store_name}")
    channel.credentials = {"access_token": token}
    channel.save()
    product_with_variants(handle=name, skus=[sku], price="10.00", stock=10)
    wait_until(lambda: flush_channel(channel_id=channel.pk) and control.item("shopify", store_name, sku)["available"] == 10,
               message="store never showed 10")
    return channel


def test_a_sale_between_our_read_and_our_write_is_not_overwritten(sandbox, store_name):
    # given: a store in sync at 10 units
    control, _ = sandbox
    channel = _store_in_sync_at_10(sandbox, store_name, "cas")

    # when: 5 units arrive in the warehouse, and while we push them the store sells one, after
    # we read its quantity and before our write lands
    services.stock_adjust(sku="CAS-1", delta=5, reason="receipt", reference="po-cas")
    wait_until(lambda: next_due_in(channel_id=channel.pk) == 0, message="the receipt never came due")
    control.fault("shopify", store_name, latency_ms=600)
    since = time.time()

    def sell_after_our_read():
        wait_until(lambda: len(control.requests("shopify", store_name, since=since)) >= 1, timeout=10)
        control.sales("shopify", store_name, sku="CAS-1", quantity=1)

    seller = threading.Thread(target=sell_after_our_read)
    seller.start()
    try:
        flush_channel(channel_id=channel.pk)
    finally:
        seller.join()
        control.fault("shopify", store_name, clear=True)

    # then: the store shows our 15 less the unit it sold, not 15
    assert control.item("shopify", store_name, "CAS-1")["available"] == 14


def test_a_stock_read_waits_until_the_bucket_also_holds_its_write(sandbox, store_name):
    # given: a store in sync at 10 units, restoring 1 point/s, and our bucket 1 point short of
    # one level read (3 points) plus its write (11)
    control, _ = sandbox
    channel = _store_in_sync_at_10(sandbox, store_name, "room", restore_rate=1)
    kind = adapter_class("shopify")
    bucket_observe(f"{channel.pk}:default", rate_per_s=kind.default_rate_per_s, burst=kind.default_burst, available=13)
    since = time.time()

    # when: 5 units arrive and the flush runs whenever its marks come due
    services.stock_adjust(sku="ROOM-1", delta=5, reason="receipt", reference="po-room")
    wait_until(lambda: flush_channel(channel_id=channel.pk) and control.item("shopify", store_name, "ROOM-1")["available"] == 15,
               timeout=8, message="the write never went: each flush spent the points on the read again")

    # then: one read, then its write; no read spent on a write that had to wait
    operations = [request.get("operations") for request in control.requests("shopify", store_name, since=since)]
    assert operations == [["nodes"], ["inventorySetQuantities"]]
