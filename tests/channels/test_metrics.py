"""/metrics: counters kept in Redis by the real worker's flushes equal the sync log's rows;
gauges come from the database at scrape time; a scrape never reads the sync log."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from channels.metrics.counters import (
    ATTEMPTS_KEY,
    HOPS_KEY,
    INBOUND_KEY,
    LATENCY_KEY,
    attempts_count,
    inbound_count,
)
from channels.models import ChannelCircuit, InboundEvent, SyncAttempt, SyncMark
from channels.redis_client import get_redis
from channels.services.alerts import alert_raise
from tests.factories import ChannelFactory, product_with_variants, webhook_channel
from tests.support.attempts import attempt
from tests.support.sandbox import wait_until


def scrape(client: Client | None = None, **headers) -> dict:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def samples(families: dict, family: str, sample_name: str | None = None) -> dict[tuple, float]:
    """{labels as sorted (name, value) pairs: value} of one family's samples."""
    wanted = sample_name or family
    return {
        tuple(sorted(s.labels.items())): s.value for s in families[family].samples if s.name == wanted
    }


def _attempt_counts(families) -> dict[tuple, float]:
    return {
        (dict(labels)["channel"], dict(labels)["event_type"], dict(labels)["status"], dict(labels)["error_code"]): value
        for labels, value in samples(families, "syncsvc_sync_attempts", "syncsvc_sync_attempts_total").items()
    }


def _attempt_rows() -> dict[tuple, float]:
    rows = Counter(SyncAttempt.objects.values_list("channel__name", "event_type", "status", "error_code"))
    return {key: float(count) for key, count in rows.items()}


@pytest.mark.stack
def test_attempt_counters_and_latency_histograms_equal_the_sync_log_rows(live, store_name):
    # given: two healthy channels and one whose store answers 503 twice
    healthy = [webhook_channel(live, f"{store_name}-{n}", name=f"ok-{n}-{store_name}") for n in (1, 2)]
    flaky = webhook_channel(live, f"{store_name}-3", name=f"flaky-{store_name}")
    live.sandbox.fault("webhook", f"{store_name}-3", status=503, count=2)

    # when: the real worker flushes the new catalog to all three
    product_with_variants(skus=["MET-1", "MET-2", "MET-3"], price="10.00")
    wait_until(lambda: not SyncMark.objects.pending().exists(), timeout=30, message="never settled")

    # then: the counters (written after each batch's commit) match the rows one for one
    assert SyncAttempt.objects.filter(channel=flaky, status="failure").exists()
    wait_until(lambda: _attempt_counts(scrape()) == _attempt_rows(), timeout=10,
               message=lambda: f"counters {_attempt_counts(scrape())} != rows {_attempt_rows()}")
    families = scrape()
    failures = {k: v for k, v in _attempt_counts(families).items() if k[0] == flaky.name and k[2] == "failure"}
    assert failures and all(code for (_, _, _, code) in failures), failures

    # and the latency histogram counts every acknowledged success, with the sync log's latencies
    counts = samples(families, "syncsvc_sync_latency_seconds", "syncsvc_sync_latency_seconds_count")
    sums = samples(families, "syncsvc_sync_latency_seconds", "syncsvc_sync_latency_seconds_sum")
    expected_counts, expected_sums = Counter(), defaultdict(float)
    for channel, event_type, latency in SyncAttempt.objects.filter(status="success", acknowledged_at__isnull=False) \
            .values_list("channel__name", "event_type", "latency_ms"):
        expected_counts[(("channel", channel), ("event_type", event_type))] += 1
        expected_sums[(("channel", channel), ("event_type", event_type))] += latency / 1000
    assert counts == {k: float(v) for k, v in expected_counts.items()}
    assert {k: round(v, 3) for k, v in sums.items()} == {k: round(v, 3) for k, v in expected_sums.items()}
    buckets = samples(families, "syncsvc_sync_latency_seconds", "syncsvc_sync_latency_seconds_bucket")
    for channel in [*healthy, flaky]:
        inf = [v for labels, v in buckets.items() if ("channel", channel.name) in labels and ("le", "+Inf") in labels]
        assert sum(inf) == SyncAttempt.objects.filter(channel=channel, status="success").count()
    hops = samples(families, "syncsvc_sync_hop_seconds", "syncsvc_sync_hop_seconds_count")
    assert {dict(k)["hop"] for k in hops} >= {"started", "acknowledged"}

    # and nothing is owed now
    pending = samples(families, "syncsvc_channel_pending_marks")
    assert all(pending[(("channel", c.name),)] == 0 for c in [*healthy, flaky])
    queues = {dict(k)["queue"] for k in samples(families, "syncsvc_celery_queue_length")}
    assert queues >= {"sync", "inbound", "maintenance"}


def test_gauges_show_what_is_owed_given_up_broken_and_alerted_now(db):
    # given: a paused channel owed three SKUs (one given up on), its breaker open, a drift alert
    paused = ChannelFactory(name="paused", enabled=False)
    product_with_variants(skus=["G-1", "G-2", "G-3"])
    ChannelFactory(name="quiet")  # made after the changes: owed nothing
    marks = list(SyncMark.objects.pending().filter(channel=paused, aspect="price"))
    SyncMark.objects.filter(channel=paused).exclude(aspect="price").delete()
    SyncMark.objects.filter(pk=marks[0].pk).update(failed_at=timezone.now())
    SyncMark.objects.filter(pk=marks[1].pk).update(first_committed_at=timezone.now() - timedelta(seconds=120))
    ChannelCircuit.objects.create(channel=paused, state=ChannelCircuit.State.OPEN)
    alert_raise(channel=paused, kind="drift", detail="G-1 shows 9.00")
    for n, status in enumerate(["received", "received", "needs_attention", "applied"]):
        InboundEvent.objects.create(channel=paused, key=f"e{n}", topic="orders/create", body="{}", status=status,
                                    received_at=timezone.now())

    # when
    families = scrape()

    # then
    assert samples(families, "syncsvc_channel_pending_marks") == {(("channel", "paused"),): 2.0, (("channel", "quiet"),): 0.0}
    assert samples(families, "syncsvc_channel_failed_marks")[(("channel", "paused"),)] == 1.0
    assert 120 <= samples(families, "syncsvc_channel_oldest_pending_age_seconds")[(("channel", "paused"),)] < 150
    assert samples(families, "syncsvc_channel_oldest_pending_age_seconds")[(("channel", "quiet"),)] == 0.0
    circuit = samples(families, "syncsvc_channel_circuit_state")
    assert circuit[(("channel", "paused"), ("state", "open"))] == 1.0
    assert circuit[(("channel", "paused"), ("state", "closed"))] == 0.0
    assert circuit[(("channel", "quiet"), ("state", "closed"))] == 1.0
    alerts = samples(families, "syncsvc_alerts_open")
    assert alerts[(("channel", "paused"), ("kind", "drift"))] == 1.0
    assert alerts[(("channel", "paused"), ("kind", "dead_channel"))] == 0.0
    waiting = samples(families, "syncsvc_inbound_events_waiting")
    assert waiting[(("channel", "paused"), ("status", "received"))] == 2.0
    assert waiting[(("channel", "paused"), ("status", "needs_attention"))] == 1.0
    assert waiting[(("channel", "quiet"), ("status", "received"))] == 0.0


@pytest.fixture
def clean_counters():
    keys = (ATTEMPTS_KEY, LATENCY_KEY, HOPS_KEY, INBOUND_KEY)
    get_redis().delete(*keys)
    yield
    get_redis().delete(*keys)


PENDING = 5_000


def test_a_scrape_of_20_channels_reads_no_sync_log_and_makes_a_few_grouped_queries(db, clean_counters):
    # given: 20 channels, sync log rows, 5,000 pending marks, counters for every channel and
    # event type
    channels = [ChannelFactory(name=f"big-{n:02d}") for n in range(20)]
    ids = [c.pk for c in channels]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SyncAttempt._meta.db_table} (channel_id, sku, event_type, status, error_code, error_message,"
            " retry_count, version, committed_at, started_at, timestamp)"
            " SELECT (%s::bigint[])[1 + n %% 20], 'SKU-' || n, 'price', 'success', '', '', 0, n, %s, %s, %s"
            " FROM generate_series(1, 20000) AS n",
            [ids, now, now, now],
        )
        cursor.execute(
            f"INSERT INTO {SyncMark._meta.db_table} (channel_id, variant_id, aspect, version, first_committed_at,"
            " last_committed_at, due_at, attempts, last_error)"
            " SELECT (%s::bigint[])[1 + n %% 20], n, 'price', n, %s, %s, %s, 0, ''"
            " FROM generate_series(1, %s) AS n",
            [ids, now, now, now, PENDING],
        )
        cursor.execute("ANALYZE")
    for channel in channels:
        attempts_count(attempts=[
            attempt(channel, at=now, sku=f"S{n}", status=status, error_code=code, event_type=event_type)
            for n, (status, code, event_type) in enumerate(
                [("success", "", "price"), ("failure", "http_503", "price"), ("success", "", "inventory"),
                 ("throttled", "429", "inventory"), ("success", "", "content")]
            )
        ])
        inbound_count(statuses=[(channel.pk, "applied"), (channel.pk, "ignored")])
    client = Client()

    # when
    with CaptureQueriesContext(connection) as queries:
        families = scrape(client)

    # then
    assert not [q["sql"] for q in queries.captured_queries if SyncAttempt._meta.db_table in q["sql"]]
    assert len(queries.captured_queries) <= 6, [q["sql"] for q in queries.captured_queries]
    assert sum(samples(families, "syncsvc_channel_pending_marks").values()) == PENDING
    assert len(_attempt_counts(families)) == 20 * 5
    assert len(samples(families, "syncsvc_sync_latency_seconds", "syncsvc_sync_latency_seconds_count")) == 20 * 3
    assert len(samples(families, "syncsvc_inbound_events", "syncsvc_inbound_events_total")) == 40


def test_a_metrics_token_is_required_when_set(db, settings):
    # given
    settings.SYNCSVC = {**settings.SYNCSVC, "METRICS_TOKEN": "s3cret"}
    client = Client()

    # when / then
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret").status_code == 401
    assert "syncsvc_channel_pending_marks" in scrape(client, HTTP_AUTHORIZATION="Bearer s3cret")


def test_a_channels_dedicated_queue_is_measured_too(db):
    # given: a channel routed to its own queue, one flush waiting there (no worker consumes it)
    from syncsvc.celery import app

    ChannelFactory(name="routed", settings={"sync_queue": "sync.routed"})
    app.send_task("syncsvc.heartbeat", queue="sync.routed")
    try:
        # when
        lengths = samples(scrape(), "syncsvc_celery_queue_length")

        # then
        assert lengths[(("queue", "sync.routed"),)] == 1
        assert (("queue", "sync"),) in lengths
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("sync.routed")
