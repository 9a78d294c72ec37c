"""The core pipeline end to end: API -> DB (change + marks) -> wake-up -> real Celery worker ->
webhook adapter -> sandbox store over real HTTP."""
from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import transaction

from channels.models import Listing, SyncAttempt, SyncMark
from inventory import services
from inventory.models import Variant
from syncsvc.celery import app as celery_app
from tests.factories import product_with_variants, webhook_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack


def _price_shown(stack, store, sku):
    item = stack.sandbox.item("webhook", store, sku)
    return item and item["price"]


def _settled(stack, store, sku, price) -> int:
    """Wait until the store shows `price` and nothing is owed for the SKU; its write count."""
    wait_until(lambda: _price_shown(stack, store, sku) == price, message=f"{sku} never showed {price}")
    wait_until(lambda: not SyncMark.objects.pending().filter(variant__sku=sku).exists(), message=f"{sku} never settled")
    return stack.sandbox.item("webhook", store, sku)["writes"]


def test_price_patched_through_the_api_reaches_the_sandbox_store(live, store_name, pim):
    # given
    webhook_channel(live, store_name)
    product_with_variants(skus=["TEE-1"], price="10.00")
    wait_until(lambda: _price_shown(live, store_name, "TEE-1") == "10.00", message="initial price never arrived")

    # when
    response = pim.patch("/api/v1/variants/TEE-1/", {"price": "12.50"}, format="json")

    # then
    assert response.status_code == 200, response.content
    wait_until(lambda: _price_shown(live, store_name, "TEE-1") == "12.50", timeout=5, message="new price never arrived")
    attempt = SyncAttempt.objects.filter(sku="TEE-1", event_type="price", status="success").order_by("-id").first()
    assert attempt.latency_ms is not None and attempt.acknowledged_at >= attempt.committed_at
    listing = Listing.objects.get(variant__sku="TEE-1")
    assert listing.status == "listed" and listing.last_synced_at >= attempt.committed_at


def test_a_rolled_back_change_sends_nothing(live, store_name):
    # given
    webhook_channel(live, store_name)
    product_with_variants(skus=["RB-1", "RB-2"], price="10.00")
    _settled(live, store_name, "RB-2", "10.00")
    writes_before = _settled(live, store_name, "RB-1", "10.00")

    # when: one change rolls back, a later one commits
    with pytest.raises(RuntimeError), transaction.atomic():
        services.variant_update(variant=Variant.objects.get(sku="RB-1"), fields={"price": Decimal("99.00")})
        raise RuntimeError("abort")
    services.variant_update(variant=Variant.objects.get(sku="RB-2"), fields={"price": Decimal("11.00")})

    # then: the committed one arrives; the rolled-back one left no mark and no write
    wait_until(lambda: _price_shown(live, store_name, "RB-2") == "11.00", message="committed change never arrived")
    item = live.sandbox.item("webhook", store_name, "RB-1")
    assert item["price"] == "10.00" and item["writes"] == writes_before
    assert not SyncMark.objects.pending().filter(variant__sku="RB-1").exists()


def test_a_burst_of_100_edits_reaches_the_channel_as_a_few_writes_ending_at_the_last_value(live, store_name, pim):
    # given
    webhook_channel(live, store_name)
    product_with_variants(skus=["HOT-1"], price="1.00")
    writes_before = _settled(live, store_name, "HOT-1", "1.00")

    # when
    started = time.monotonic()
    for cents in range(101, 201):
        assert pim.patch("/api/v1/variants/HOT-1/", {"price": f"{cents / 100:.2f}"}, format="json").status_code == 200
    editing_s = time.monotonic() - started

    # then: at most one write per hot window while the edits went on (and the last value's);
    # the bound follows how long 100 edits took, so a loaded machine does not break it
    wait_until(lambda: _price_shown(live, store_name, "HOT-1") == "2.00", message="last value never arrived")
    writes = live.sandbox.item("webhook", store_name, "HOT-1")["writes"] - writes_before
    windows = editing_s / settings.SYNCSVC["HOT_COALESCE_S"]
    assert 1 <= writes <= windows + 2, f"100 edits in {editing_s:.1f} s ({windows:.0f} hot windows) became {writes} writes"


def test_a_lost_wakeup_is_recovered_by_the_sweep(live, store_name):
    # given: the worker stops consuming flushes, so wake-ups pile up in the broker
    webhook_channel(live, store_name)
    product_with_variants(skus=["LOST-1"], price="5.00")
    wait_until(lambda: _price_shown(live, store_name, "LOST-1") == "5.00", message="seed never arrived")
    # (limit=1: the stack's one worker answers; without it the broadcast waits its whole timeout)
    assert celery_app.control.cancel_consumer("sync", reply=True, timeout=10, limit=1), "the worker never answered"
    try:
        services.variant_update(variant=Variant.objects.get(sku="LOST-1"), fields={"price": Decimal("6.00")})
        # when: every queued wake-up is lost
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge("sync")
    finally:
        celery_app.control.add_consumer("sync", reply=True, timeout=10, limit=1)

    # then: beat's sweep finds the due mark and wakes the channel again
    wait_until(lambda: _price_shown(live, store_name, "LOST-1") == "6.00", timeout=20, message="sweep never recovered it")


def test_a_worker_killed_mid_flush_still_delivers_the_change_once(live, store_name):
    # given: the channel answers slowly, so a flush is in flight when we strike
    webhook_channel(live, store_name)
    product_with_variants(skus=["KILL-1"], price="5.00")
    writes_before = _settled(live, store_name, "KILL-1", "5.00")
    live.sandbox.fault("webhook", store_name, latency_ms=1500)
    services.variant_update(variant=Variant.objects.get(sku="KILL-1"), fields={"price": Decimal("7.00")})
    wait_until(
        lambda: SyncMark.objects.pending().filter(variant__sku="KILL-1", lease_until__isnull=False).exists(),
        message="the flush never claimed the mark",
    )

    # when: SIGKILL the pool processes doing the work
    for pid in live.processes.worker_children():
        os.kill(pid, signal.SIGKILL)
    live.sandbox.fault("webhook", store_name, clear=True)

    # then: the lease ends, the sweep re-wakes, the same event id is resent and applied once
    wait_until(lambda: _price_shown(live, store_name, "KILL-1") == "7.00", timeout=30, message="change lost after SIGKILL")
    wait_until(lambda: not SyncMark.objects.pending().filter(variant__sku="KILL-1").exists(), timeout=30, message="mark never cleared")
    assert live.sandbox.item("webhook", store_name, "KILL-1")["writes"] == writes_before + 1  # 7.00, once


def test_a_channel_answering_503_makes_changes_wait_then_arrive(live, store_name):
    # given
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["SICK-1"], price="5.00")
    _settled(live, store_name, "SICK-1", "5.00")
    live.sandbox.fault("webhook", store_name, status=503, count=3)

    # when
    services.variant_update(variant=Variant.objects.get(sku="SICK-1"), fields={"price": Decimal("8.00")})

    # then
    wait_until(lambda: _price_shown(live, store_name, "SICK-1") == "8.00", timeout=20, message="never recovered from 503s")

    def logged_through_the_success():  # the attempt rows commit just after the store's answer
        rows = list(SyncAttempt.objects.filter(channel=channel, sku="SICK-1", event_type="price").order_by("id"))
        return rows if rows and rows[-1].status == "success" else None

    rows = wait_until(logged_through_the_success, message="the success was never logged")
    failures = [r for r in rows if r.status == "failure"]
    assert len(failures) == 3 and all(r.error_code == "http_503" for r in failures)
    assert [r.retry_count for r in failures] == [0, 1, 2]
    assert rows[-1].status == "success" and rows[-1].retry_count == 3
    wait_until(
        lambda: all(r.resolved_at for r in SyncAttempt.objects.filter(channel=channel, status="failure")),
        message="failures never marked resolved",
    )
