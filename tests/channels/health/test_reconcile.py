"""Reconciliation: a drift that produced no error (a price changed directly in the store) is
found by reading the store back, recorded, alerted, and, when the channel is set to,
corrected by a resync; and the pacing that reads every SKU once per cycle within the rate."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels.models import (
    Alert,
    ChannelHealth,
    Drift,
    Incident,
    ReconcileCursor,
    ResyncJob,
)
from channels.services.reconcile import channels_due, reads_owed, reconcile_batch_limit
from tests.factories import ChannelFactory, product_with_variants, sandbox_channel
from tests.support.sandbox import wait_until

SKUS = ["RC-1", "RC-2", "RC-3"]


def _synced(live, kind, store, price="10.00", available=5) -> None:
    for sku in SKUS:
        wait_until(
            lambda sku=sku: (item := live.sandbox.item(kind, store, sku)) and (item["price"], item["available"]) == (price, available),
            timeout=30, message=f"{sku} never synced",
        )


def _drift_alert(channel):
    return Alert.objects.filter(channel=channel, kind=Alert.Kind.DRIFT).first()


@pytest.mark.stack
def test_a_price_changed_directly_in_the_store_is_found_and_corrected(live, store_name, ops):
    # given: a store in sync, reconciled every 2 s, set to resync what drifted
    channel = sandbox_channel(live, "woocommerce", store_name)
    ChannelHealth.objects.update_or_create(channel=channel, defaults={"reconcile_cycle_s": 2, "reconcile_resync": True})
    for sku in SKUS:
        live.sandbox.put_item("woocommerce", store_name, sku, price="1.00", available=0, title=sku)
    product_with_variants(handle="rc", skus=SKUS, price="10.00", stock=5)
    _synced(live, "woocommerce", store_name)

    # when: a merchant changes a price in the store's own admin (no error anywhere)
    live.sandbox.put_item("woocommerce", store_name, "RC-2", price="7.00", available=5)

    # then: reconciliation finds it: a drift row, the drift alert naming the SKU
    drift = wait_until(lambda: Drift.objects.filter(channel=channel, sku="RC-2", aspect="price").first(), timeout=20,
                       message="the drift was never found")
    assert (drift.expected, drift.live) == ("10.00", "7.00")
    assert not Drift.objects.filter(channel=channel).exclude(sku="RC-2").exists()
    alert = wait_until(lambda: _drift_alert(channel), timeout=10, message="no drift alert")
    assert "RC-2" in alert.data["skus"] and "RC-2 price 7.00 (PIM 10.00)" in alert.detail
    # and corrects it: a resync of the drifted SKU, verified; the store shows the PIM price
    job = wait_until(lambda: ResyncJob.objects.filter(channel=channel, requested_by="reconciliation").first(),
                     timeout=10, message="no resync of the drifted SKU")
    assert list(job.items.values_list("sku", flat=True)) == ["RC-2"]
    wait_until(lambda: live.sandbox.item("woocommerce", store_name, "RC-2")["price"] == "10.00", timeout=20,
               message="the store never showed the PIM's price again")
    wait_until(lambda: ResyncJob.objects.get(pk=job.pk).status == "done", timeout=20, message="resync never verified")
    wait_until(lambda: Drift.objects.get(pk=drift.pk).resolved_at, timeout=10, message="the drift never resolved")
    wait_until(lambda: _drift_alert(channel).cleared_at, timeout=10, message="the drift alert never cleared")
    # the incident the alert opened, closed by the verified resync
    incident = Incident.objects.get(pk=_drift_alert(channel).incident_id)
    assert ResyncJob.objects.get(pk=job.pk).incident_id == incident.pk and incident.skus == ["RC-2"]
    wait_until(lambda: Incident.objects.get(pk=incident.pk).recovered_at, timeout=10, message="incident never closed")
    # and reconciliation goes on reading the catalog, cycle after cycle
    wait_until(lambda: ReconcileCursor.objects.get(channel=channel).cycles >= 1, timeout=10, message="no second cycle")


@pytest.mark.stack
def test_without_auto_resync_drift_is_reported_until_the_store_agrees_again(live, store_name):
    # given: stock differences up to 2 units are tolerated
    channel = sandbox_channel(live, "magento", store_name)
    ChannelHealth.objects.update_or_create(channel=channel, defaults={
        "reconcile_cycle_s": 2, "drift_stock_tolerance": 2, "drift_price_tolerance": Decimal("0.05"),
    })
    for sku in SKUS:
        live.sandbox.put_item("magento", store_name, sku, price="1.00", available=0, title=sku)
    product_with_variants(handle="rc", skus=SKUS, price="10.00", stock=5)
    _synced(live, "magento", store_name)

    # when: one store edit within the tolerances, one beyond
    live.sandbox.put_item("magento", store_name, "RC-1", price="10.04", available=4)
    live.sandbox.put_item("magento", store_name, "RC-3", price="10.00", available=1)

    # then: only the one beyond is drift; nothing is resynced
    drift = wait_until(lambda: Drift.objects.filter(channel=channel, sku="RC-3", aspect="inventory").first(),
                       timeout=20, message="the stock drift was never found")
    assert (drift.expected, drift.live) == ("5", "1")
    alert = wait_until(lambda: _drift_alert(channel), timeout=10, message="no drift alert")
    assert alert.data["skus"] == ["RC-3"]
    cursor_cycles = ReconcileCursor.objects.get(channel=channel).cycles
    wait_until(lambda: ReconcileCursor.objects.get(channel=channel).cycles >= cursor_cycles + 1, timeout=10,
               message="reconciliation never read the catalog again")
    assert not Drift.objects.filter(channel=channel, sku="RC-1").exists()
    assert not ResyncJob.objects.filter(channel=channel).exists()
    assert live.sandbox.item("magento", store_name, "RC-3")["available"] == 1

    # when: the merchant puts it back
    live.sandbox.put_item("magento", store_name, "RC-3", price="10.00", available=5)

    # then
    wait_until(lambda: Drift.objects.get(pk=drift.pk).resolved_at, timeout=15, message="the drift never resolved")
    wait_until(lambda: _drift_alert(channel).cleared_at, timeout=10, message="the drift alert never cleared")


# --- pacing ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_channel_is_not_read_until_its_cycle_owes_a_sku():
    channel = ChannelFactory(kind="woocommerce", credentials={"consumer_key": "k", "consumer_secret": "s"})
    product_with_variants(skus=[f"P-{n}" for n in range(10)])

    # the first look starts the cycle and reads nothing
    assert channels_due() == []
    cursor = ReconcileCursor.objects.get(channel=channel)
    assert cursor.cycle_started_at is not None and reads_owed(channel) == 0


@pytest.mark.django_db
def test_reads_are_spread_over_the_cycle_and_capped_by_the_rate_limit(settings):
    channel = ChannelFactory(kind="amazon", credentials={"client_id": "c", "client_secret": "s", "refresh_token": "r",
                                                         "seller_id": "A1"})
    product_with_variants(skus=[f"P-{n}" for n in range(10)])
    ChannelHealth.objects.update_or_create(channel=channel, defaults={"reconcile_cycle_s": 100})
    now = timezone.now()
    ReconcileCursor.objects.create(channel=channel, cycle_started_at=now - timedelta(seconds=45), checked_in_cycle=2)

    # 45 % into the cycle: 4 of 10 SKUs should have been read, 2 were
    assert reads_owed(channel, now=now) == 2
    assert channels_due() == [channel.pk]
    # a finished cycle owes a new one once its time is up
    ReconcileCursor.objects.filter(channel=channel).update(checked_in_cycle=10)
    assert reads_owed(channel, now=now) == 0
    assert reads_owed(channel, now=now + timedelta(seconds=60)) == 10
    # Amazon reads one SKU per call at 5 calls/s: half of that over a 60 s interval
    settings.SYNCSVC = {**settings.SYNCSVC, "RECONCILE_INTERVAL_S": 60.0, "RECONCILE_READ_SHARE": 0.5}
    assert reconcile_batch_limit(channel) == 150
