"""/status/ reports latency per hop over the status window."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.hops import hop_percentiles
from channels.models import SyncAttempt
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _attempt(channel, at, *, enqueue_ms, start_ms, ack_ms, verify_ms=None, status="success"):
    committed = at - timedelta(milliseconds=enqueue_ms + start_ms + ack_ms)
    enqueued = committed + timedelta(milliseconds=enqueue_ms)
    started = enqueued + timedelta(milliseconds=start_ms)
    acknowledged = started + timedelta(milliseconds=ack_ms)
    return SyncAttempt(
        channel=channel, sku="H-1", event_type="price", status=status, version=1, committed_at=committed,
        enqueued_at=enqueued, started_at=started, acknowledged_at=acknowledged, timestamp=acknowledged,
        verified_at=acknowledged + timedelta(milliseconds=verify_ms) if verify_ms is not None else None,
        latency_ms=enqueue_ms + start_ms + ack_ms,
    )


@pytest.fixture
def shop():
    channel = ChannelFactory(name="shop")
    now = timezone.now()
    rows = [_attempt(channel, now - timedelta(seconds=10 + i), enqueue_ms=2 * (i + 1), start_ms=5, ack_ms=10 * (i + 1),
                     verify_ms=100 if i < 2 else None) for i in range(5)]
    rows += [
        # outside the 10-minute window, and a failure inside it: neither counts
        _attempt(channel, now - timedelta(minutes=11), enqueue_ms=900, start_ms=900, ack_ms=900, verify_ms=900),
        _attempt(channel, now - timedelta(seconds=5), enqueue_ms=700, start_ms=700, ack_ms=700, status="failure"),
    ]
    SyncAttempt.objects.bulk_create(rows)
    return channel


def test_status_reports_each_hops_percentiles_over_the_window(ops, shop):
    body = {row["name"]: row for row in ops.get("/api/v1/status/").json()["channels"]}["shop"]

    hops = body["hops_ms"]
    assert set(hops) == {"commit_to_enqueue", "enqueue_to_start", "start_to_ack", "ack_to_verify"}
    # start -> ack of the five successes: 10, 20, 30, 40, 50 ms (linear interpolation)
    assert hops["start_to_ack"] == {"p50": 30.0, "p95": 48.0, "p99": 49.6}
    assert hops["commit_to_enqueue"] == {"p50": 6.0, "p95": 9.6, "p99": 9.9}
    assert hops["enqueue_to_start"] == {"p50": 5.0, "p95": 5.0, "p99": 5.0}
    assert hops["ack_to_verify"] == {"p50": 100.0, "p95": 100.0, "p99": 100.0}  # only two were verified
    # the existing keys stay
    assert {"pending", "oldest_pending_age_s", "last_success_at", "error_rate_10m", "latency_ms", "state"} <= set(body)


def test_sql_and_python_percentiles_agree(shop):
    since = timezone.now() - timedelta(minutes=10)
    assert hop_percentiles(shop, since=since, in_sql=False) == hop_percentiles(shop, since=since)


def test_a_channel_with_no_recent_success_has_no_hop_figures(ops):
    ChannelFactory(name="quiet")
    body = {row["name"]: row for row in ops.get("/api/v1/status/").json()["channels"]}["quiet"]
    assert body["hops_ms"]["start_to_ack"] == {"p50": None, "p95": None, "p99": None}
