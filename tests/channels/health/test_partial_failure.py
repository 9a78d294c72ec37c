"""The classic partial failure: a price change reaches Shopify and WooCommerce while Magento
answers 503. The sync log shows two successes and one failure with its code per SKU; the
channel's alert opens within its window; after the store recovers, a forced resync of
exactly those SKUs on that channel succeeds, is verified by reading the store back, the alert
clears and the incident closes.

The alert assertions use the alert evaluation (`channels.services.alert_rules`, run by beat
in the live stack); they are skipped, with the rest of the test still run, where that module
is absent."""
from __future__ import annotations

import re
from collections import defaultdict

import pytest
from django.utils import timezone

from channels.models import Alert, ChannelHealth, Incident, SyncAttempt
from tests.factories import product_with_variants, sandbox_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack
SKUS = ["PF-1", "PF-2", "PF-3"]
KINDS = ("shopify", "woocommerce", "magento")
FAILURE_ALERTS = (Alert.Kind.DEAD_CHANNEL, Alert.Kind.DEGRADED_CHANNEL)


def _price(live, kind, store, sku):
    return (live.sandbox.item(kind, store, sku) or {}).get("price")


def _log(ops, **params) -> list[dict]:
    response = ops.get("/api/v1/sync-logs/", {**params, "limit": 1000})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _open_failure_alerts(channel):
    return list(Alert.objects.filter(channel=channel, kind__in=FAILURE_ALERTS, cleared_at__isnull=True))


def test_magento_answering_503_is_seen_per_channel_and_a_resync_of_its_skus_repairs_it(live, store_name, ops, pim):
    # given: three stores in sync with the PIM at 10.00
    stores = {kind: f"{store_name}-{kind[:4]}" for kind in KINDS}
    channels = {kind: sandbox_channel(live, kind, store, name=f"{kind}-pf") for kind, store in stores.items()}
    magento = channels["magento"]
    # Short windows for the test: dead after 2 × 2 s without success, degraded over 6 s.
    ChannelHealth.objects.update_or_create(channel=magento, defaults={
        "expected_interval_s": 2, "degraded_window_s": 6, "degraded_min_attempts": 2, "degraded_error_rate": 0.2,
    })
    for kind, store in stores.items():
        for sku in SKUS:
            live.sandbox.put_item(kind, store, sku, price="1.00", available=0, title=sku)
    product_with_variants(handle="pf", skus=SKUS, price="10.00", stock=4)
    for kind, store in stores.items():
        for sku in SKUS:
            wait_until(lambda k=kind, s=store, sku=sku: _price(live, k, s, sku) == "10.00", timeout=30,
                       message=f"{sku} never reached {kind}")
    # ... and logged: a store shows a value a moment before the worker logs the call, and a
    # seed success logged after the fault starts would count as one of the fault's rows
    wait_until(lambda: all(SyncAttempt.objects.filter(channel=channel, sku=sku, event_type="price", status="success").exists()
                           for channel in channels.values() for sku in SKUS),
               timeout=30, message="the seed's deliveries were never logged")

    # when: Magento starts answering 503, and the PIM changes the prices
    live.sandbox.fault("magento", stores["magento"], status=503, seconds=600)
    changed_at = timezone.now()
    response = pim.post("/api/v1/prices/bulk/", [{"sku": sku, "price": "12.00"} for sku in SKUS], format="json")
    assert response.status_code == 200, response.content

    # then: Shopify and WooCommerce take it, Magento does not
    for kind in ("shopify", "woocommerce"):
        for sku in SKUS:
            wait_until(lambda k=kind, sku=sku: _price(live, k, stores[k], sku) == "12.00", timeout=30,
                       message=f"{sku} never reached {kind}")
    since = changed_at.isoformat()

    def magento_failed_every_sku() -> bool:
        rows = _log(ops, channel=magento.name, event_type="price", status="failure", since=since)
        return {row["sku"] for row in rows} >= set(SKUS)

    wait_until(magento_failed_every_sku, timeout=30, message="Magento's failures never logged")
    assert all(_price(live, "magento", stores["magento"], sku) == "10.00" for sku in SKUS)
    # per channel and SKU: two successes and one failure with its code
    for sku in SKUS:
        by_channel = defaultdict(set)
        for row in _log(ops, sku=sku, event_type="price", since=since):
            by_channel[row["channel"]].add((row["status"], row["error_code"]))
        assert by_channel["shopify-pf"] == {("success", "")}, by_channel
        assert by_channel["woocommerce-pf"] == {("success", "")}, by_channel
        assert by_channel["magento-pf"] and all(status == "failure" for status, _ in by_channel["magento-pf"])
        assert ("failure", "http_503") in by_channel["magento-pf"], by_channel

    # and the alert opens within its window (2 × the expected interval, plus an evaluation)
    alert = wait_until(lambda: _open_failure_alerts(magento), timeout=2 * 2 + 10,
                       message="no dead/degraded alert opened on Magento")[0]
    assert (alert.opened_at - changed_at).total_seconds() < 2 * 2 + 10
    listed = ops.get("/api/v1/alerts/", {"open": "true", "channel": magento.name}).json()["results"]
    assert {row["kind"] for row in listed} & set(FAILURE_ALERTS)
    assert not Alert.objects.filter(channel__in=[channels["shopify"], channels["woocommerce"]],
                                    kind__in=FAILURE_ALERTS, cleared_at__isnull=True).exists()

    # when: the store recovers and an operator resyncs those SKUs on that channel
    live.sandbox.fault("magento", stores["magento"], clear=True)
    response = ops.post(f"/api/v1/channels/{magento.pk}/resync/", {"skus": SKUS}, format="json")

    # then: delivered, read back and verified
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]

    def finished():
        body = ops.get(f"/api/v1/channels/{magento.pk}/resync/{job_id}/").json()
        return body["status"] in ("done", "failed") and body

    body = wait_until(finished, timeout=60, interval=0.2, message="the resync never finished")
    assert body["status"] == "done" and (body["verified"], body["failed"], body["total"]) == (3, 0, 3), body
    assert all(_price(live, "magento", stores["magento"], sku) == "12.00" for sku in SKUS)
    # the incident: its cause, channel and SKUs, open until the channel recovered
    incident = Incident.objects.get(pk=body["incident"])
    assert list(incident.channels.all()) == [magento]
    assert set(SKUS) <= set(incident.skus)
    assert re.search(r"Magento answered 503 \(http_503\) from \d\d:\d\d:\d\d", incident.cause), incident.cause
    assert incident.detected_at <= timezone.now()

    # and the alert clears, and the incident closes
    wait_until(lambda: not _open_failure_alerts(magento), timeout=30, message="Magento's alert never cleared")
    incident = wait_until(lambda: Incident.objects.filter(pk=incident.pk, recovered_at__isnull=False).first(),
                          timeout=30, message="the incident never closed")
    assert incident.recovered_at >= incident.detected_at
    # the failures the resync repaired are resolved in the sync log (not left "open")
    assert not SyncAttempt.objects.filter(channel=magento, status="failure", resolved_at__isnull=True).exists()
    listed = ops.get("/api/v1/incidents/", {"open": "false"}).json()["results"]
    assert [row["id"] for row in listed] == [incident.pk] and listed[0]["channels"] == ["magento-pf"]
