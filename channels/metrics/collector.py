"""The /metrics families, computed at scrape time: gauges from a handful of grouped queries
(never a scan of the sync log), counters and histograms from the Redis hashes every process
adds to (counters.py), queue lengths from the broker."""
from __future__ import annotations

import time
from collections import defaultdict

from django.conf import settings
from django.db.models import Count, Min, Q
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from syncsvc.heartbeats import routed_queues

from ..models import Alert, Channel, ChannelCircuit, InboundEvent, SyncMark
from ..redis_client import get_redis
from .counters import ATTEMPTS_KEY, BUCKETS_S, CAUGHT_KEY, HOPS_KEY, INBOUND_KEY, INF, LATENCY_KEY

# kombu's Redis transport keeps a queue's priority levels in lists of their own.
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (3, 6, 9)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SyncCollector:
    """One scrape: six queries (one for the channels' own flush queues), one Redis round trip (two
    when the broker is another Redis)."""

    def collect(self):
        started = time.monotonic()
        self._queue_names = sorted(routed_queues())  # one list for the lengths read and their labels
        names = dict(Channel.objects.values_list("pk", "name"))
        yield from self._marks(names)
        yield from self._circuits(names)
        yield from self._alerts(names)
        yield from self._inbound_now(names)
        hashes = self._read_hashes()
        yield self._attempts(names, hashes[ATTEMPTS_KEY])
        yield self._histogram(
            HistogramMetricFamily(
                "syncsvc_sync_latency_seconds", "Commit in the PIM to acknowledgement by the channel, acknowledged attempts.",
                labels=["channel", "event_type"],
            ),
            names, hashes[LATENCY_KEY],
        )
        yield self._histogram(
            HistogramMetricFamily(
                "syncsvc_sync_hop_seconds", "Time to reach each hop from the previous one (committed -> enqueued -> "
                "started -> acknowledged), acknowledged attempts of every channel.", labels=["hop"],
            ),
            None, hashes[HOPS_KEY],
        )
        yield self._inbound_counts(names, hashes[INBOUND_KEY])
        yield self._caught_counts(names, hashes[CAUGHT_KEY])
        yield self._queues()
        yield GaugeMetricFamily("syncsvc_metrics_scrape_seconds", "How long this scrape took to compute.",
                                value=time.monotonic() - started)

    # --- from the database ---------------------------------------------------------------------

    def _marks(self, names):
        pending = GaugeMetricFamily("syncsvc_channel_pending_marks", "SKU aspects owed to the channel (queue depth).",
                                    labels=["channel"])
        oldest = GaugeMetricFamily("syncsvc_channel_oldest_pending_age_seconds",
                                   "Age of the oldest change the channel is owed (0 when none).", labels=["channel"])
        failed = GaugeMetricFamily("syncsvc_channel_failed_marks",
                                   "SKU aspects given up on (waiting for a resync or a new change).", labels=["channel"])
        held = GaugeMetricFamily("syncsvc_channel_held_marks",
                                 "SKU aspects held back by the channel's threshold rules (part of pending).",
                                 labels=["channel"])
        rows = {
            row["channel_id"]: row
            for row in SyncMark.objects.pending().values("channel_id").annotate(
                pending=Count("id", filter=Q(failed_at__isnull=True)),
                oldest=Min("first_committed_at", filter=Q(failed_at__isnull=True)),
                failed=Count("id", filter=Q(failed_at__isnull=False)),
                held=Count("id", filter=Q(failed_at__isnull=True, held_since__isnull=False)),
            ).order_by()
        }
        now = time.time()
        for channel_id, name in names.items():
            row = rows.get(channel_id, {})
            pending.add_metric([name], row.get("pending", 0))
            failed.add_metric([name], row.get("failed", 0))
            held.add_metric([name], row.get("held", 0))
            at = row.get("oldest")
            oldest.add_metric([name], max(0.0, now - at.timestamp()) if at else 0.0)
        yield from (pending, oldest, failed, held)

    def _circuits(self, names):
        family = GaugeMetricFamily("syncsvc_channel_circuit_state", "The channel's circuit breaker: 1 for its state.",
                                   labels=["channel", "state"])
        states = dict(ChannelCircuit.objects.values_list("channel_id", "state"))
        for channel_id, name in names.items():
            current = states.get(channel_id, ChannelCircuit.State.CLOSED)
            for state in ChannelCircuit.State.values:
                family.add_metric([name, state], 1.0 if state == current else 0.0)
        yield family

    def _alerts(self, names):
        family = GaugeMetricFamily("syncsvc_alerts_open", "Open alerts by channel and kind.", labels=["channel", "kind"])
        counts = {
            (row["channel_id"], row["kind"]): row["n"]
            for row in Alert.objects.filter(cleared_at__isnull=True).values("channel_id", "kind").annotate(n=Count("id")).order_by()
        }
        for channel_id, name in names.items():
            for kind in Alert.Kind.values:
                family.add_metric([name, kind], counts.get((channel_id, kind), 0))
        yield family

    def _inbound_now(self, names):
        family = GaugeMetricFamily(
            "syncsvc_inbound_events_waiting",
            "Inbound events stored and not applied (received) or waiting for a person (needs_attention).",
            labels=["channel", "status"],
        )
        waiting = (InboundEvent.Status.RECEIVED, InboundEvent.Status.NEEDS_ATTENTION)
        counts = {
            (row["channel_id"], row["status"]): row["n"]
            for row in InboundEvent.objects.filter(status__in=waiting).values("channel_id", "status").annotate(n=Count("id")).order_by()
        }
        for channel_id, name in names.items():
            for status in waiting:
                family.add_metric([name, status], counts.get((channel_id, status), 0))
        yield family

    # --- from Redis -----------------------------------------------------------------------------

    def _read_hashes(self) -> dict[str, dict[str, float]]:
        keys = (ATTEMPTS_KEY, LATENCY_KEY, HOPS_KEY, INBOUND_KEY, CAUGHT_KEY)
        pipe = get_redis().pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        if settings.CELERY_BROKER_URL == settings.REDIS_URL:
            self._queue_lengths(pipe)
        results = pipe.execute()
        self._lengths = results[len(keys):] or None
        return {key: {_text(f): float(v) for f, v in raw.items()} for key, raw in zip(keys, results)}

    def _queue_lengths(self, pipe) -> None:
        for queue in self._queue_names:
            pipe.llen(queue)
            for step in _KOMBU_PRIORITY_STEPS:
                pipe.llen(f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}")

    def _queues(self):
        family = GaugeMetricFamily("syncsvc_celery_queue_length", "Tasks waiting in each Celery queue the app routes to.",
                                   labels=["queue"])
        lengths = self._lengths
        if lengths is None:
            if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
                return family  # another broker: its own exporter knows better
            import redis

            pipe = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1).pipeline(transaction=False)
            self._queue_lengths(pipe)
            lengths = pipe.execute()
        per_queue = 1 + len(_KOMBU_PRIORITY_STEPS)
        for index, queue in enumerate(self._queue_names):
            family.add_metric([queue], sum(lengths[index * per_queue:(index + 1) * per_queue]))
        return family

    def _attempts(self, names, counts):
        family = CounterMetricFamily(
            "syncsvc_sync_attempts", "Push attempts per channel, event type, status and error code.",
            labels=["channel", "event_type", "status", "error_code"],
        )
        for field, value in sorted(counts.items()):
            channel_id, event_type, status, error_code = field.split("|", 3)
            name = names.get(int(channel_id))
            if name is not None:  # a deleted channel's counters are not shown
                family.add_metric([name, event_type, status, error_code], value)
        return family

    def _histogram(self, family: HistogramMetricFamily, names: dict[int, str] | None, fields):
        """Fields `[channel_id|]label|slot` (slot: a bucket's bound, "sum" or "count"), the buckets
        stored apart, made cumulative here. `names` None: the series have no channel."""
        series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for field, value in fields.items():
            *labels, slot = field.split("|")
            series[tuple(labels)][slot] = value
        bounds = [repr(b) for b in BUCKETS_S] + [INF]
        for labels, slots in sorted(series.items()):
            if names is not None:
                name = names.get(int(labels[0]))
                if name is None:
                    continue  # a deleted channel
                labels = (name, *labels[1:])
            cumulative, buckets = 0.0, []
            for bound in bounds:
                cumulative += slots.get(bound, 0.0)
                buckets.append((bound, cumulative))
            family.add_metric(list(labels), buckets, sum_value=slots.get("sum", 0.0))
        return family

    def _caught_counts(self, names, counts):
        family = CounterMetricFamily(
            "syncsvc_orders_caught_by_poll", "Order events the order poll applied before any webhook brought their "
            "news (WooCommerce): the channel's webhooks are failing or disabled.", labels=["channel"],
        )
        for field, value in sorted(counts.items()):
            name = names.get(int(field))
            if name is not None:
                family.add_metric([name], value)
        return family

    def _inbound_counts(self, names, counts):
        family = CounterMetricFamily("syncsvc_inbound_events", "Inbound events settled, per channel and status.",
                                     labels=["channel", "status"])
        for field, value in sorted(counts.items()):
            channel_id, status = field.split("|", 1)
            name = names.get(int(channel_id))
            if name is not None:
                family.add_metric([name, status], value)
        return family
