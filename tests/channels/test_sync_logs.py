"""GET /api/v1/sync-logs/: filters, keyset pagination newest first, validation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import SyncAttempt
from tests.factories import ChannelFactory
from tests.support.attempts import attempt

pytestmark = pytest.mark.django_db

URL = "/api/v1/sync-logs/"


@pytest.fixture
def log():
    """Two channels, a handful of attempts a minute apart (the newest first in `rows`)."""
    shop, market = ChannelFactory(name="shop"), ChannelFactory(name="market")
    t0 = timezone.now() - timedelta(hours=1)
    specs = [
        (shop, "A", "success", "price", "", None),
        (shop, "B", "failure", "inventory", "http_503", t0 + timedelta(minutes=9)),  # resolved later
        (market, "A", "failure", "price", "http_503", None),  # still open
        (market, "C", "throttled", "price", "http_429", None),
        (shop, "A", "success", "inventory", "", None),
        (market, "B", "success", "content", "", None),
    ]
    rows = SyncAttempt.objects.bulk_create(
        attempt(channel, at=t0 + timedelta(minutes=i), sku=sku, status=status, event_type=event, error_code=code,
                resolved_at=resolved)
        for i, (channel, sku, status, event, code, resolved) in enumerate(specs)
    )
    return {"shop": shop, "market": market, "t0": t0, "rows": rows[::-1]}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def expected(log, predicate) -> list[int]:
    return [row.pk for row in log["rows"] if predicate(row)]


def test_the_log_is_newest_first_with_every_hop(ops, log):
    response = ops.get(URL)
    assert ids(response) == [row.pk for row in log["rows"]]
    first = response.json()["results"][0]
    assert {"committed_at", "enqueued_at", "started_at", "acknowledged_at", "verified_at", "resolved_at",
            "retry_count", "latency_ms", "error_code", "event_type"} <= set(first)


@pytest.mark.parametrize(
    "query, predicate",
    [
        ("channel=shop", lambda r: r.channel.name == "shop"),
        ("sku=A", lambda r: r.sku == "A"),
        ("status=failure", lambda r: r.status == "failure"),
        ("status=success", lambda r: r.status == "success"),
        ("event_type=price", lambda r: r.event_type == "price"),
        ("error_code=http_503", lambda r: r.error_code == "http_503"),
        ("resolved=false", lambda r: r.status in ("failure", "throttled") and r.resolved_at is None),
        ("resolved=true", lambda r: r.resolved_at is not None),
        ("channel=market&status=failure", lambda r: r.channel.name == "market" and r.status == "failure"),
        ("channel=shop&sku=A&event_type=inventory", lambda r: r.channel.name == "shop" and r.sku == "A"
         and r.event_type == "inventory"),
    ],
)
def test_each_filter_alone_and_combined(ops, log, query, predicate):
    assert ids(ops.get(f"{URL}?{query}")) == expected(log, predicate)


def test_a_channel_is_named_by_id_or_name(ops, log):
    assert ids(ops.get(f"{URL}?channel={log['market'].pk}")) == ids(ops.get(f"{URL}?channel=market"))


def test_since_is_inclusive_and_until_exclusive(ops, log):
    t0 = log["t0"]
    since, until = (t0 + timedelta(minutes=1)).isoformat(), (t0 + timedelta(minutes=4)).isoformat()
    response = ops.get(URL, {"since": since, "until": until})
    assert ids(response) == expected(log, lambda r: t0 + timedelta(minutes=1) <= r.timestamp < t0 + timedelta(minutes=4))
    assert len(ids(response)) == 3
    both = ops.get(URL, {"since": since, "until": until, "channel": "market"})
    assert ids(both) == expected(log, lambda r: r.channel.name == "market" and r.pk in ids(response))


def test_keyset_pages_walk_the_whole_log_once_in_order_even_with_equal_timestamps(ops, log):
    # given: three more rows sharing one timestamp (a page boundary falls among them)
    same = timezone.now() - timedelta(minutes=30)
    SyncAttempt.objects.bulk_create(attempt(log["shop"], at=same, sku=f"T{i}") for i in range(3))
    everything = ids(ops.get(URL, {"limit": 1000}))

    # when
    seen, url = [], f"{URL}?limit=2"
    while url:
        body = ops.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    # then
    assert seen == everything and len(seen) == 9
    times = list(SyncAttempt.objects.filter(pk__in=seen).values_list("pk", "timestamp"))
    order = dict(times)
    assert [order[pk] for pk in seen] == sorted(order.values(), reverse=True)


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=broken", "status"),
        ("event_type=stock", "event_type"),
        ("since=not-a-date", "since"),
        ("until=2026-13-45T00:00:00Z", "until"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("channel=nowhere", "channel"),
        ("resolved=maybe", "resolved"),
        ("stauts=failure", "stauts"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(ops, log, query, field):
    response = ops.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"] and body["detail"].startswith(field)
