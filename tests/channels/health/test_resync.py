"""Forced resync over the real stack: the SKUs are sent again at the channel's rate by the
ordinary flushes, then read back from the sandbox store and verified."""
from __future__ import annotations

import pytest

from channels.adapters.registry import adapter_class
from channels.models import ResyncJob, SyncAttempt
from tests.factories import product_with_variants, sandbox_channel, webhook_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack
SKUS = ["RS-1", "RS-2", "RS-3"]


def _job(ops, channel, job_id) -> dict:
    return ops.get(f"/api/v1/channels/{channel.pk}/resync/{job_id}/").json()


def _finished(ops, channel, job_id, timeout=30.0) -> dict:
    return wait_until(
        lambda: (body := _job(ops, channel, job_id))["status"] in ("done", "failed", "cancelled") and body,
        timeout=timeout, interval=0.2, message=lambda: f"resync never finished: {_job(ops, channel, job_id)}",
    )


def _store_shows(live, kind, store, sku, price, available) -> bool:
    item = live.sandbox.item(kind, store, sku)
    return bool(item) and item["price"] == price and item["available"] == available


@pytest.mark.parametrize("kind", ["woocommerce", "shopify"])
def test_a_resync_sends_the_pim_state_again_and_verifies_it_by_reading_it_back(live, store_name, ops, kind):
    # given: a store in sync with the PIM, then a merchant edits a price and a stock there
    channel = sandbox_channel(live, kind, store_name)
    for sku in SKUS:
        live.sandbox.put_item(kind, store_name, sku, price="1.00", available=0, title=sku)
    product_with_variants(handle="rs", skus=SKUS, price="10.00", stock=5)
    for sku in SKUS:
        wait_until(lambda sku=sku: _store_shows(live, kind, store_name, sku, "10.00", 5), timeout=20,
                   message=f"{sku} never synced")
    live.sandbox.put_item(kind, store_name, "RS-2", price="7.00", available=5)
    live.sandbox.put_item(kind, store_name, "RS-3", price="10.00", available=1)

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/resync/", {"skus": SKUS}, format="json")

    # then: accepted, delivered, read back and verified
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]
    body = _finished(ops, channel, job_id)
    assert body["status"] == "done", body
    assert (body["done"], body["total"], body["verified"], body["failed"]) == (3, 3, 3, 0)
    assert {item["sku"]: item["state"] for item in body["items"]} == dict.fromkeys(SKUS, "verified")
    assert body["eta_s"] == 0 and body["rate_per_s"] > 0
    assert _store_shows(live, kind, store_name, "RS-2", "10.00", 5)
    assert _store_shows(live, kind, store_name, "RS-3", "10.00", 5)
    job = ResyncJob.objects.get(pk=job_id)
    delivering = SyncAttempt.objects.filter(channel=channel, status="success", timestamp__gte=job.created_at)
    assert {(a.sku, a.event_type) for a in delivering} == {(sku, aspect) for sku in SKUS for aspect in adapter_class(kind).aspects}
    assert all(a.verified_at and a.verified_at >= a.acknowledged_at for a in delivering)


def test_a_channel_that_cannot_be_read_back_is_delivered_and_says_verification_is_unavailable(live, store_name, ops):
    # given
    channel = webhook_channel(live, store_name)
    product_with_variants(handle="wh", skus=["WH-1"], price="3.00")
    wait_until(lambda: (live.sandbox.item("webhook", store_name, "WH-1") or {}).get("price") == "3.00",
               message="initial price never arrived")
    requests_before = len(live.sandbox.requests("webhook", store_name))

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/resync/", {"skus": ["WH-1"]}, format="json")

    # then
    assert response.status_code == 202, response.content
    assert response.json()["verification"] == "unavailable"
    body = _finished(ops, channel, response.json()["job"])
    assert body["status"] == "done" and body["done"] == 1 and body["verified"] == 0
    assert body["items"][0]["state"] == "delivered"
    assert "verification unavailable" in body["detail"]
    # sent again (the receiver drops it as a duplicate of the same version: same event ids)
    assert len(live.sandbox.requests("webhook", store_name)) > requests_before
    job = ResyncJob.objects.get(pk=body["job"])
    assert SyncAttempt.objects.filter(channel=channel, sku="WH-1", status="success", timestamp__gte=job.created_at,
                                      verified_at__isnull=True).count() == 3


def test_a_resync_of_every_sku_on_a_rate_limited_channel_runs_at_its_rate_and_verifies_all(live, store_name, ops):
    # given: Amazon at 5 requests/s (one PATCH per SKU and aspect, one read-back per SKU)
    skus = [f"AZ-{n:02d}" for n in range(8)]
    channel = sandbox_channel(live, "amazon", store_name)
    for sku in skus:
        live.sandbox.put_item("amazon", store_name, sku, price="2.00", available=1, title=sku)
    product_with_variants(handle="az", skus=skus, price="4.00", stock=2)
    for sku in skus:
        wait_until(lambda sku=sku: _store_shows(live, "amazon", store_name, sku, "4.00", 2), timeout=60,
                   message=f"{sku} never synced")

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/resync/", {"all": True}, format="json")

    # then: the ETA before anything is delivered comes from the channel's limit
    assert response.status_code == 202, response.content
    first = response.json()
    assert first["total"] == 8 and first["eta_s"] == pytest.approx(8 / first["limit_rate_per_s"], abs=0.05)
    body = _finished(ops, channel, first["job"], timeout=90)
    assert body["status"] == "done" and body["verified"] == 8, body
