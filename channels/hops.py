"""Latency per hop of a channel's recent deliveries, for /status/: commit → enqueue → start →
acknowledgement → verification, each as p50/p95/p99 in milliseconds."""
from __future__ import annotations

import math
from datetime import datetime

from django.db import connection

from .models import Channel, SyncAttempt

HOPS = ("commit_to_enqueue", "enqueue_to_start", "start_to_ack", "ack_to_verify")
FRACTIONS = (0.50, 0.95, 0.99)
# The newest successful attempts of the window that are looked at: one backward range scan of
# the (channel, timestamp) index, however busy the channel.
SAMPLE = 2000

_SQL = f"""
SELECT {", ".join(
    f"percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {expr}) FILTER (WHERE {expr} IS NOT NULL)"
    for expr in (
        "extract(epoch FROM enqueued_at - committed_at) * 1000",
        "extract(epoch FROM started_at - enqueued_at) * 1000",
        "extract(epoch FROM acknowledged_at - started_at) * 1000",
        "extract(epoch FROM verified_at - acknowledged_at) * 1000",
    )
)}
  FROM (SELECT committed_at, enqueued_at, started_at, acknowledged_at, verified_at
          FROM {SyncAttempt._meta.db_table}
         WHERE channel_id = %(channel)s AND timestamp >= %(since)s AND status = %(status)s
         ORDER BY timestamp DESC
         LIMIT %(sample)s) AS recent
"""


def _interpolated(sorted_values: list[float], fraction: float) -> float:
    """percentile_cont: linear interpolation between the closest ranks."""
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _summary(values: list[float | None] | None) -> dict[str, float | None]:
    names = ("p50", "p95", "p99")
    if not values:
        return dict.fromkeys(names)
    return {name: round(float(value), 1) for name, value in zip(names, values, strict=True)}


def hop_percentiles(
    channel: Channel, *, since: datetime, sample: int = SAMPLE, in_sql: bool | None = None
) -> dict[str, dict[str, float | None]]:
    """p50/p95/p99 of each hop over the channel's newest successful attempts since `since` (at
    most `sample`); None where no attempt has both ends of a hop (e.g. nothing verified).
    Computed in SQL on PostgreSQL (`in_sql` None), in Python elsewhere, with the same result."""
    if in_sql is None:
        in_sql = connection.vendor == "postgresql"
    if in_sql:
        with connection.cursor() as cursor:
            cursor.execute(_SQL, {"fractions": list(FRACTIONS), "channel": channel.pk, "since": since,
                                  "status": SyncAttempt.Status.SUCCESS, "sample": sample})
            row = cursor.fetchone()
        return {hop: _summary(values) for hop, values in zip(HOPS, row, strict=True)}
    rows = (
        SyncAttempt.objects.filter(channel=channel, timestamp__gte=since, status=SyncAttempt.Status.SUCCESS)
        .order_by("-timestamp")
        .values_list("committed_at", "enqueued_at", "started_at", "acknowledged_at", "verified_at")[:sample]
    )
    durations: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for times in rows:
        for hop, earlier, later in zip(HOPS, times, times[1:], strict=False):
            if earlier is not None and later is not None:
                durations[hop].append((later - earlier).total_seconds() * 1000)
    return {
        hop: _summary([_interpolated(sorted(values), f) for f in FRACTIONS] if values else None)
        for hop, values in durations.items()
    }
