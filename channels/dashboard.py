"""Reads for the merchandisers' dashboard in the admin: per channel its state, what it owes,
its latency over the last hour, open alerts, unresolved failures and resync progress.

Every query is bounded (a time range on an indexed column, or a LIMIT), so the page stays
cheap however large the sync log grows. `dashboard_overview` is the one entry point: the
page and its JSON endpoint render the same dict.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, FloatField
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .models import Alert, Channel, ResyncJob, SyncAttempt
from .selectors import channel_status
from .services.incidents import failed_skus, failures_since

SPARKLINE_MINUTES = 60
SPARKLINE_WIDTH = 240
SPARKLINE_HEIGHT = 40
SPARKLINE_PAD = 3  # room for the line's round caps at the edges
# Without a percentile aggregate in the database (SQLite) the latencies are read and sorted
# here: at most this many, the newest.
SPARKLINE_MAX_ROWS = 20_000
RECENT_FAILURES = 10
# The "Resync failed SKUs" button sends at most this many.
FAILED_SKUS_MAX = 10_000
RECENT_JOBS = 3
STATES = ("healthy", "degraded", "dead", "paused")


class Percentile95(Aggregate):
    """PostgreSQL's continuous 95th percentile of a column."""

    function = "percentile_cont"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def dashboard_overview(*, now: datetime | None = None) -> dict:
    """Everything the dashboard shows, for every channel, as plain JSON-ready values."""
    now = now or timezone.now()
    channels = list(Channel.objects.order_by("name"))
    alerts = _open_alerts(channel_ids=[c.pk for c in channels])
    return {
        "generated_at": now.isoformat(),
        "channels": [_channel_overview(channel, alerts.get(channel.pk, []), now) for channel in channels],
    }


def _channel_overview(channel: Channel, alerts: list[dict], now: datetime) -> dict:
    status = channel_status(channel, now=now)
    state = status.get("state") or "healthy"
    failures = failures_recent(channel=channel)
    return {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        # A state this page does not know (a newer selector) still shows, as grey.
        "state": state if state in STATES else "paused",
        "state_label": state,
        "pending": status.get("pending") or 0,
        "oldest_pending_age_s": status.get("oldest_pending_age_s"),
        "last_success_at": _iso(status.get("last_success_at")),
        "error_rate_10m": status.get("error_rate_10m"),
        "latency_ms": status.get("latency_ms") or {},
        "circuit": status.get("circuit"),
        "sparkline": latency_sparkline(channel=channel, now=now),
        "alerts": alerts,
        "failures": failures,
        "failed_skus": len(resync_candidates(channel=channel)),
        "jobs": [_job_progress(job) for job in ResyncJob.objects.filter(channel=channel).select_related("channel")[:RECENT_JOBS]],
    }


def latency_p95_per_minute(*, channel: Channel, now: datetime) -> dict[datetime, float]:
    """p95 of successful attempts' latency (ms) per minute over the last hour, by minute start."""
    since = (now - timedelta(minutes=SPARKLINE_MINUTES - 1)).replace(second=0, microsecond=0)
    attempts = SyncAttempt.objects.filter(
        channel=channel, status=SyncAttempt.Status.SUCCESS, timestamp__gte=since, timestamp__lte=now, latency_ms__isnull=False
    )
    if connection.vendor == "postgresql":
        rows = attempts.annotate(minute=TruncMinute("timestamp")).values("minute").annotate(p95=Percentile95("latency_ms"))
        return {row["minute"]: row["p95"] for row in rows.order_by()}
    by_minute: dict[datetime, list[float]] = {}
    for timestamp, latency in attempts.order_by("-timestamp").values_list("timestamp", "latency_ms")[:SPARKLINE_MAX_ROWS]:
        by_minute.setdefault(timestamp.replace(second=0, microsecond=0), []).append(latency)
    return {minute: _p95(values) for minute, values in by_minute.items()}


def latency_sparkline(*, channel: Channel, now: datetime) -> dict:
    """The last hour's p95 per minute as an SVG polyline (`points`, x = minute, y = latency
    scaled to the busiest minute), with the numbers it was drawn from."""
    per_minute = latency_p95_per_minute(channel=channel, now=now)
    start = (now - timedelta(minutes=SPARKLINE_MINUTES - 1)).replace(second=0, microsecond=0)
    values = [per_minute.get(start + timedelta(minutes=i)) for i in range(SPARKLINE_MINUTES)]
    present = [v for v in values if v is not None]
    top = max(present) if present else 0.0
    pad = SPARKLINE_PAD
    step = (SPARKLINE_WIDTH - 2 * pad) / (SPARKLINE_MINUTES - 1)
    points = []
    for index, value in enumerate(values):
        if value is None:
            continue
        y = SPARKLINE_HEIGHT - pad - (value / top * (SPARKLINE_HEIGHT - 2 * pad) if top else 0)
        points.append(f"{pad + index * step:.1f},{y:.1f}")
    if len(points) == 1:
        points.append(points[0])  # one minute of data: a dot (a zero-length segment, round caps)
    return {
        "width": SPARKLINE_WIDTH,
        "height": SPARKLINE_HEIGHT,
        "points": " ".join(points),
        "p95_ms": [None if v is None else round(v, 1) for v in values],
        "max_ms": round(top, 1) if present else None,
        "last_ms": round(present[-1], 1) if present else None,
    }


def failures_recent(*, channel: Channel, limit: int = RECENT_FAILURES) -> list[dict]:
    """The newest unresolved failed attempts of the channel."""
    rows = (
        SyncAttempt.objects.filter(channel=channel, status=SyncAttempt.Status.FAILURE, resolved_at__isnull=True)
        .order_by("-id")
        .values("id", "timestamp", "sku", "event_type", "error_code", "error_message", "retry_count")[:limit]
    )
    return [{**row, "timestamp": _iso(row["timestamp"]), "error_message": row["error_message"][:200]} for row in rows]


def resync_candidates(*, channel: Channel) -> list[str]:
    """What the channel's "Resync failed SKUs" button sends: the SKUs that failed (or gave up,
    or drifted) since its last incident closed, as the admin's resync action counts them."""
    return failed_skus(channel=channel, since=failures_since(channel))[:FAILED_SKUS_MAX]


def _open_alerts(*, channel_ids: list[int]) -> dict[int, list[dict]]:
    by_channel: dict[int, list[dict]] = {}
    rows = Alert.objects.filter(channel_id__in=channel_ids, cleared_at__isnull=True).order_by("-opened_at")
    for alert in rows.values("id", "channel_id", "kind", "detail", "opened_at", "last_seen_at"):
        by_channel.setdefault(alert.pop("channel_id"), []).append(
            {**alert, "opened_at": _iso(alert["opened_at"]), "last_seen_at": _iso(alert["last_seen_at"])}
        )
    return by_channel


def _job_progress(job: ResyncJob) -> dict:
    # Imported on use: the resync service pulls in the adapters.
    from .services.resync import resync_progress

    progress = resync_progress(job)
    return {
        "id": job.pk,
        "status": progress["status"],
        "total": progress["total"],
        "done": progress["done"],
        "delivered": progress["delivered"],
        "verified": progress["verified"],
        "failed": progress["failed"],
        "eta_s": None if job.finished_at else progress["eta_s"],
        "requested_by": job.requested_by,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    # Linear interpolation between closest ranks, as PostgreSQL's percentile_cont does.
    position = 0.95 * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _iso(value) -> str | None:
    return value.isoformat() if value else None
