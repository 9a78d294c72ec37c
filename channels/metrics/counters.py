"""Counters and latency histograms in Redis hashes, so that every worker process on every host
adds to the same numbers (an in-process prometheus_client counter would count one process
only, and be lost with it). One pipelined round trip per flush batch, after its commit.

A crash between the commit and this write loses that batch's increments (the SyncAttempt rows
stay the truth); Redis being away loses them with a warning, never the flush.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

import redis

from ..redis_client import get_redis

log = logging.getLogger(__name__)

ATTEMPTS_KEY = "syncsvc:metrics:attempts"  # "channel_id|event_type|status|error_code" -> count
LATENCY_KEY = "syncsvc:metrics:latency"  # "channel_id|event_type|le" -> count; "...|sum", "...|count"
HOPS_KEY = "syncsvc:metrics:hops"  # "hop|le" -> count; "hop|sum", "hop|count"
INBOUND_KEY = "syncsvc:metrics:inbound"  # "channel_id|status" -> count
CAUGHT_KEY = "syncsvc:metrics:caught"  # "channel_id" -> orders the poll brought before any webhook

# Seconds. Commit to acknowledgement is sub-second when all is well, minutes under backoff,
# up to hours behind a dead channel. Few buckets: every one is a series per channel and event
# type, and a scrape of 20 channels must stay under 50 ms.
BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0)
INF = "+Inf"
# Each hop is measured from the one before it: committed -> enqueued -> started -> acknowledged;
# over all channels (per channel, the latency histogram says which one is slow).
HOPS = ("enqueued", "started", "acknowledged")


def bucket_of(seconds: float) -> str:
    for bound in BUCKETS_S:
        if seconds <= bound:
            return repr(bound)
    return INF


class _Histograms:
    def __init__(self) -> None:
        self.buckets: Counter[str] = Counter()
        self.sums: defaultdict[str, float] = defaultdict(float)

    def observe(self, series: str, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.buckets[f"{series}|{bucket_of(seconds)}"] += 1
        self.buckets[f"{series}|count"] += 1
        self.sums[f"{series}|sum"] += seconds

    def write(self, pipe, key: str) -> None:
        for field, count in self.buckets.items():
            pipe.hincrby(key, field, count)
        for field, total in self.sums.items():
            pipe.hincrbyfloat(key, field, total)


def _hop_seconds(attempt) -> dict[str, float]:
    stamps = [attempt.committed_at, attempt.enqueued_at, attempt.started_at, attempt.acknowledged_at]
    hops = {}
    previous = stamps[0]
    for hop, stamp in zip(HOPS, stamps[1:]):
        if stamp is None:
            continue  # not enqueued by a commit (a sweep, a retry): the next hop spans both
        hops[hop] = (stamp - previous).total_seconds()
        previous = stamp
    return hops


def attempts_count(*, attempts: Iterable) -> None:
    """Add a committed batch of SyncAttempt rows to the counters: attempts by channel, event
    type, status and error code; commit-to-acknowledgement latency and per-hop durations of
    the acknowledged ones."""
    counts: Counter[str] = Counter()
    latency, hops = _Histograms(), _Histograms()
    for attempt in attempts:
        channel_id = attempt.channel_id
        counts[f"{channel_id}|{attempt.event_type}|{attempt.status}|{attempt.error_code}"] += 1
        if attempt.acknowledged_at is None or attempt.status != "success":
            continue
        latency.observe(f"{channel_id}|{attempt.event_type}", (attempt.acknowledged_at - attempt.committed_at).total_seconds())
        for hop, seconds in _hop_seconds(attempt).items():
            hops.observe(hop, seconds)
    if not counts:
        return
    pipe = get_redis().pipeline(transaction=False)
    for field, count in counts.items():
        pipe.hincrby(ATTEMPTS_KEY, field, count)
    latency.write(pipe, LATENCY_KEY)
    hops.write(pipe, HOPS_KEY)
    _execute(pipe, "attempts")


def inbound_count(*, statuses: Iterable[tuple[int, str]]) -> None:
    """Add settled inbound events (channel id, status) to the counters."""
    _add(INBOUND_KEY, Counter(f"{channel_id}|{status}" for channel_id, status in statuses), "inbound events")


def caught_count(*, channel_ids: Iterable[int]) -> None:
    """Add events the order poll applied before any webhook brought their news."""
    _add(CAUGHT_KEY, Counter(str(channel_id) for channel_id in channel_ids), "orders caught by the poll")


def _add(key: str, counts: Counter, what: str) -> None:
    if not counts:
        return
    pipe = get_redis().pipeline(transaction=False)
    for field, count in counts.items():
        pipe.hincrby(key, field, count)
    _execute(pipe, what)


def _execute(pipe, what: str) -> None:
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics: %s not counted (%s)", what, exc.__class__.__name__)
