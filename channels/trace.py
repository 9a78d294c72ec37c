"""One change, hop by hop, per channel: what carried it there, when, and how it ended.

A change X (a `Change` row: one aspect of one variant) is carried to a channel by the attempts
that sent a state including it: those of that channel, variant and aspect with version >= X
(the flush always sends the current state, so a later version includes X's). Its trace on a
channel runs from the first such attempt to the first that succeeded, the failures in between
being its retries; an attempt with a version above X delivered X coalesced with later changes.
"""
from __future__ import annotations

from datetime import datetime
from itertools import pairwise

from inventory.models import Change

from .adapters.registry import UnknownChannelKind, adapter_class
from .models import Channel, SyncAttempt, SyncMark

DELIVERED = {SyncAttempt.Status.SUCCESS, SyncAttempt.Status.IGNORED}  # ignored: a shadow channel's "sent"
HOPS = ("committed", "enqueued", "started", "acknowledged", "verified")
HOP_DURATIONS = ("commit_to_enqueue", "enqueue_to_start", "start_to_ack", "ack_to_verify")


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    # Clocks of several hosts and a flush enqueued before the change joined its mark can put
    # a hop a hair before the previous one: no negative durations.
    return round(max(0.0, (later - earlier).total_seconds() * 1000), 1)


def _attempt_view(attempt: SyncAttempt, *, change_id: int, committed_at: datetime) -> dict:
    hops = {
        "committed": committed_at,
        "enqueued": attempt.enqueued_at,
        "started": attempt.started_at,
        "acknowledged": attempt.acknowledged_at,
        "verified": attempt.verified_at,
    }
    # A missing hop (no enqueue time: a flush woken by the sweep) is bridged by the one before.
    durations = {}
    known = committed_at
    for (before, after), name in zip(pairwise(HOPS), HOP_DURATIONS, strict=True):
        known = hops[before] or known
        durations[name] = _ms(hops[after], known)
    return {
        "id": attempt.pk,
        "timestamp": attempt.timestamp,
        "status": attempt.status,
        "error_code": attempt.error_code,
        "error_message": attempt.error_message,
        "retry_count": attempt.retry_count,
        "version": attempt.version,
        "coalesced": attempt.version > change_id,
        "resolved_at": attempt.resolved_at,
        "hops": hops,
        "durations_ms": durations,
    }


def _mark_view(mark: SyncMark | None) -> dict | None:
    if mark is None:
        return None
    return {
        "version": mark.version,
        "pending": mark.due_at is not None,
        "due_at": mark.due_at,
        "attempts": mark.attempts,
        "last_error": mark.last_error,
        "failed_at": mark.failed_at,
        "delivered_at": mark.delivered_at,
        # Held back by the channel's threshold rules (min_interval, min_units) since then.
        "held_reason": mark.held_reason,
        "held_since": mark.held_since,
    }


def _channel_trace(channel: Channel, attempts: list[SyncAttempt], mark: SyncMark | None, change: dict) -> dict:
    carried: list[SyncAttempt] = []
    delivered = None
    for attempt in attempts:
        carried.append(attempt)
        if attempt.status in DELIVERED:
            delivered = attempt
            break
    owed = mark is not None and mark.version >= change["id"]
    if delivered is not None:
        status = "delivered"
    elif owed and mark.failed_at is not None:
        status = "failed"  # gave up: waits for a resync or a new change
    elif owed and mark.due_at is not None:
        status = "pending"
    elif carried:
        status = "failed"
    else:
        status = "not owed"
    committed_at = change["committed_at"]
    return {
        "channel": {"id": channel.pk, "name": channel.name, "kind": channel.kind, "enabled": channel.enabled},
        "status": status,
        "delivered_version": delivered.version if delivered else None,
        "coalesced": bool(delivered and delivered.version > change["id"]),
        "retries": sum(1 for a in carried if a.status not in DELIVERED),
        "delivered_at": delivered.acknowledged_at if delivered else None,
        "verified_at": delivered.verified_at if delivered else None,
        "latency_ms": _ms(delivered.acknowledged_at, committed_at) if delivered else None,
        "attempts": [_attempt_view(a, change_id=change["id"], committed_at=committed_at) for a in carried],
        "mark": _mark_view(mark),
    }


def change_trace(*, change_id: int) -> dict | None:
    """The trace of change `change_id` on every channel that takes its aspect (and any other
    that logged attempts for it), or None when there is no such change (unknown or pruned)."""
    row = (
        Change.objects.filter(pk=change_id)
        .values("id", "variant_id", "variant__sku", "aspect", "origin", "created_at")
        .first()
    )
    if row is None:
        return None
    change = {
        "id": row["id"], "variant_id": row["variant_id"], "sku": row["variant__sku"], "aspect": row["aspect"],
        "origin": row["origin"], "committed_at": row["created_at"],
    }
    # (sku, timestamp) index: the attempts of this SKU since the change, a handful.
    attempts = (
        SyncAttempt.objects.filter(
            sku=change["sku"], timestamp__gte=change["committed_at"], variant_id=change["variant_id"],
            event_type=change["aspect"], version__gte=change["id"],
        )
        .order_by("id")
    )
    by_channel: dict[int, list[SyncAttempt]] = {}
    for attempt in attempts:
        by_channel.setdefault(attempt.channel_id, []).append(attempt)
    marks = {m.channel_id: m for m in SyncMark.objects.filter(variant_id=change["variant_id"], aspect=change["aspect"])}
    channels = [
        channel for channel in Channel.objects.order_by("name")
        if change["aspect"] in _aspects_of(channel.kind) or channel.pk in by_channel
    ]
    return {
        "change": change,
        "channels": [_channel_trace(c, by_channel.get(c.pk, []), marks.get(c.pk), change) for c in channels],
    }


def _aspects_of(kind: str) -> frozenset[str]:
    try:
        return adapter_class(kind).aspects
    except UnknownChannelKind:  # marked with every aspect (see receivers): owed all of them
        return frozenset({"price", "inventory", "content"})
