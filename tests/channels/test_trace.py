"""GET /api/v1/changes/{id}/trace/: one change, hop by hop, per channel."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels.models import SyncAttempt
from inventory import services
from inventory.models import Change, Variant
from tests.factories import ChannelFactory, product_with_variants, webhook_channel
from tests.support.attempts import attempt
from tests.support.sandbox import wait_until


def _latest_change(sku: str, aspect: str) -> Change:
    return Change.objects.filter(variant__sku=sku, aspect=aspect).order_by("-pk").first()


def _delivered(channel, sku: str, version: int):
    return SyncAttempt.objects.filter(channel=channel, sku=sku, status="success", version__gte=version).exists()


@pytest.mark.stack
def test_a_change_is_traced_hop_by_hop_on_two_channels_one_failing_then_succeeding(live, store_name, ops):
    # given: two webhook stores in sync, the second about to answer 503 twice
    steady = webhook_channel(live, f"{store_name}-a", name="steady")
    flaky = webhook_channel(live, f"{store_name}-b", name="flaky")
    product_with_variants(skus=["TR-1"], price="5.00")
    first = _latest_change("TR-1", "price")
    wait_until(lambda: _delivered(steady, "TR-1", first.pk) and _delivered(flaky, "TR-1", first.pk),
               timeout=20, message="the catalog never reached both stores")
    live.sandbox.fault("webhook", f"{store_name}-b", status=503, count=2)

    # when
    services.variant_update(variant=Variant.objects.get(sku="TR-1"), fields={"price": Decimal("7.00")})
    change = _latest_change("TR-1", "price")
    wait_until(lambda: _delivered(steady, "TR-1", change.pk) and _delivered(flaky, "TR-1", change.pk),
               timeout=30, message="the change never reached both stores")
    response = ops.get(f"/api/v1/changes/{change.pk}/trace/")

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["change"]["id"] == change.pk and body["change"]["sku"] == "TR-1" and body["change"]["aspect"] == "price"
    traces = {t["channel"]["name"]: t for t in body["channels"]}
    assert set(traces) == {"steady", "flaky"}

    ok = traces["steady"]
    assert ok["status"] == "delivered" and ok["retries"] == 0 and ok["coalesced"] is False
    assert [a["status"] for a in ok["attempts"]] == ["success"]

    bumpy = traces["flaky"]
    assert bumpy["status"] == "delivered" and bumpy["retries"] == 2
    assert [(a["status"], a["error_code"]) for a in bumpy["attempts"]] == [
        ("failure", "http_503"), ("failure", "http_503"), ("success", ""),
    ]
    assert [a["retry_count"] for a in bumpy["attempts"]] == [0, 1, 2]
    for trace in (ok, bumpy):
        success = trace["attempts"][-1]
        hops = success["hops"]
        assert hops["committed"] and hops["started"] and hops["acknowledged"]
        assert hops["committed"] <= hops["started"] <= hops["acknowledged"]
        assert success["durations_ms"]["start_to_ack"] >= 0 and success["durations_ms"]["commit_to_enqueue"] >= 0
        assert trace["delivered_at"] == hops["acknowledged"] and trace["latency_ms"] > 0
    # the retries make the flaky channel's delivery later than the steady one's
    assert bumpy["delivered_at"] > ok["delivered_at"]


@pytest.mark.django_db
def test_pending_not_owed_and_coalesced_are_told_apart(ops):
    # given: a change owed to a paused channel (pending), delivered to another together with a
    # later change (coalesced), and a channel made after it (not owed)
    ChannelFactory(name="paused", enabled=False)
    busy = ChannelFactory(name="busy")
    product_with_variants(skus=["CO-1"])
    services.variant_update(variant=Variant.objects.get(sku="CO-1"), fields={"price": Decimal("2.00")})
    change = _latest_change("CO-1", "price")
    services.variant_update(variant=Variant.objects.get(sku="CO-1"), fields={"price": Decimal("3.00")})
    later = _latest_change("CO-1", "price")
    ChannelFactory(name="newcomer")
    now = timezone.now() + timedelta(seconds=1)
    SyncAttempt.objects.bulk_create([
        attempt(busy, at=now, sku="CO-1", event_type="price", version=later.pk,
                variant_id=change.variant_id, status="failure", error_code="http_500"),
        attempt(busy, at=now + timedelta(seconds=1), sku="CO-1", event_type="price", version=later.pk,
                variant_id=change.variant_id),
    ])

    # when
    body = ops.get(f"/api/v1/changes/{change.pk}/trace/").json()

    # then
    traces = {t["channel"]["name"]: t for t in body["channels"]}
    assert traces["paused"]["status"] == "pending" and traces["paused"]["mark"]["pending"] is True
    assert traces["paused"]["attempts"] == []
    assert traces["newcomer"]["status"] == "not owed"
    assert traces["busy"]["status"] == "delivered" and traces["busy"]["coalesced"] is True
    assert traces["busy"]["delivered_version"] == later.pk and traces["busy"]["retries"] == 1
    assert traces["busy"]["attempts"][-1]["durations_ms"]["start_to_ack"] == 10.0


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9" * 30])
def test_a_bad_id_is_400_naming_it(ops, bad):
    response = ops.get(f"/api/v1/changes/{bad}/trace/")
    assert response.status_code == 400 and "id" in response.json()["errors"]


@pytest.mark.django_db
def test_an_unknown_change_is_404(ops):
    assert ops.get("/api/v1/changes/987654321/trace/").status_code == 404
