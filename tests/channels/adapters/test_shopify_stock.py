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


def test_a_sale_between_our_read_and_our_write_is_not_overwritten(sandbox, store_name):
    # given: a store in sync at 10 units
    control, url = sandbox
    control.config("shopify", store_name, access_token="shpat_cas", webhook_url="http://127.0.0.1:9/", webhook_secret="x")
    control.put_item("shopify", store_name, "CAS-1", price="10.00", available=10, title="CAS-1")
    channel = Channel(name="cas", kind="shopify", base_url=f"{url}/shopify/{store_name}")
    channel.credentials = {"access_token": "shpat_cas"}
    channel.save()
    product_with_variants(handle="cas", skus=["CAS-1"], price="10.00", stock=10)
    wait_until(lambda: flush_channel(channel_id=channel.pk) and control.item("shopify", store_name, "CAS-1")["available"] == 10,
               message="store never showed 10")

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
    control, url = sandbox
    control.config("shopify", store_name, access_token="shpat_room", restore_rate=1,
                   webhook_url="http://127.0.0.1:9/", webhook_secret="x")
    control.put_item("shopify", store_name, "ROOM-1", price="10.00", available=10, title="ROOM-1")
    channel = Channel(name="room", kind="shopify", base_url=f"{url}/shopify/{store_name}")
    channel.credentials = {"access_token": "shpat_room"}
    channel.save()
    product_with_variants(handle="room", skus=["ROOM-1"], price="10.00", stock=10)
    wait_until(lambda: flush_channel(channel_id=channel.pk) and control.item("shopify", store_name, "ROOM-1")["available"] == 10,
               message="store never showed 10")
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
