"""Reads for the operators' API and the admin: status and the sync log."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from .hops import hop_percentiles
from .models import Alert, Channel, ChannelCircuit, SyncAttempt, SyncMark
from .services.thresholds import held_summary

STATUS_WINDOW = timedelta(minutes=10)


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return round(sorted_values[index], 1)


def latency_percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"p50": _percentile(ordered, 0.50), "p95": _percentile(ordered, 0.95), "p99": _percentile(ordered, 0.99)}


def channel_health_state(channel: Channel) -> dict:
    """The channel's state from its breaker and open alerts: paused (disabled by an operator) |
    dead (circuit open or half-open, or an open dead_channel alert) | degraded (an open
    degraded_channel alert: the channel's own threshold over its own window) | healthy; with
    the circuit and the kinds of its open alerts. The state and the alerts never disagree."""
    circuit = ChannelCircuit.objects.filter(channel=channel).values("state", "opened_at", "probe_at").first()
    circuit = circuit or {"state": ChannelCircuit.State.CLOSED, "opened_at": None, "probe_at": None}
    open_alerts = sorted(Alert.objects.filter(channel=channel, cleared_at__isnull=True).values_list("kind", flat=True))
    if not channel.enabled:
        state = "paused"
    elif circuit["state"] != ChannelCircuit.State.CLOSED or Alert.Kind.DEAD_CHANNEL in open_alerts:
        state = "dead"
    elif Alert.Kind.DEGRADED_CHANNEL in open_alerts:
        state = "degraded"
    else:
        state = "healthy"
    return {"state": state, "circuit": circuit, "open_alerts": open_alerts}


def channel_status(channel: Channel, *, now=None) -> dict:
    now = now or timezone.now()
    since = now - STATUS_WINDOW
    pending = SyncMark.objects.pending().filter(channel=channel).aggregate(count=Count("id"), oldest=Min("first_committed_at"))
    recent = SyncAttempt.objects.filter(channel=channel, timestamp__gte=since).aggregate(
        total=Count("id"),
        failed=Count("id", filter=Q(status=SyncAttempt.Status.FAILURE)),
        succeeded=Count("id", filter=Q(status=SyncAttempt.Status.SUCCESS)),
    )
    last_success = SyncAttempt.objects.filter(channel=channel, status=SyncAttempt.Status.SUCCESS).aggregate(at=Max("timestamp"))["at"]
    latencies = list(
        SyncAttempt.objects.filter(channel=channel, status=SyncAttempt.Status.SUCCESS, timestamp__gte=since, latency_ms__isnull=False)
        .order_by("-id")
        .values_list("latency_ms", flat=True)[:10_000]
    )
    error_rate = recent["failed"] / recent["total"] if recent["total"] else 0.0
    health = channel_health_state(channel)
    oldest = pending["oldest"]
    return {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        "state": health["state"],
        "pending": pending["count"],
        "failed": SyncMark.objects.filter(channel=channel, failed_at__isnull=False).count(),
        "oldest_pending_age_s": round((now - oldest).total_seconds(), 3) if oldest else None,
        # Of those pending, held back by the channel's threshold rules (channels/services/thresholds.py).
        "held": held_summary(channel_id=channel.pk, now=now),
        "last_success_at": last_success,
        "error_rate_10m": round(error_rate, 4),
        "latency_ms": latency_percentiles(latencies),
        "hops_ms": hop_percentiles(channel, since=since),
        "circuit": health["circuit"],
        "open_alerts": health["open_alerts"],
    }


def channels_status() -> list[dict]:
    now = timezone.now()
    return [channel_status(channel, now=now) for channel in Channel.objects.all()]
