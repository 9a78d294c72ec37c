"""Alerts: open one per (channel, kind) while its condition holds, clear it on recovery.

`alert_raise` and `alert_clear` are the one way alerts change, whoever detects the condition
(the beat evaluation, reconciliation, a resync): an open alert is refreshed, never duplicated
(a partial unique index holds one open alert per channel and kind).
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Alert, Channel, ChannelHealth
from .notify import CLEARED, OPENED, alert_notify_later


def health_of(channel: Channel | int) -> ChannelHealth:
    """The channel's thresholds (the defaults until an operator edits them)."""
    channel_id = channel if isinstance(channel, int) else channel.pk
    health, _ = ChannelHealth.objects.get_or_create(channel_id=channel_id)
    return health


def alert_raise(*, channel: Channel | int, kind: str, detail: str, data: dict | None = None) -> tuple[Alert, bool]:
    """Open the alert, or refresh the open one (its detail, data and last_seen_at); returns
    (alert, opened_now)."""
    channel_id = channel if isinstance(channel, int) else channel.pk
    now = timezone.now()
    fields = {"detail": detail, "data": data or {}, "last_seen_at": now}
    updated = Alert.objects.filter(channel_id=channel_id, kind=kind, cleared_at__isnull=True).update(**fields)
    if updated:
        return Alert.objects.get(channel_id=channel_id, kind=kind, cleared_at__isnull=True), False
    try:
        with transaction.atomic():
            alert = Alert.objects.create(channel_id=channel_id, kind=kind, opened_at=now, **fields)
        alert_notify_later(alert_id=alert.pk, event=OPENED)
        return alert, True
    except IntegrityError:  # opened by someone else a moment ago
        Alert.objects.filter(channel_id=channel_id, kind=kind, cleared_at__isnull=True).update(**fields)
        return Alert.objects.get(channel_id=channel_id, kind=kind, cleared_at__isnull=True), False


def alert_clear(*, channel: Channel | int, kind: str, detail: str = "") -> Alert | None:
    """Clear the open alert of this kind, if any (the condition no longer holds); returns it."""
    channel_id = channel if isinstance(channel, int) else channel.pk
    alert = Alert.objects.filter(channel_id=channel_id, kind=kind, cleared_at__isnull=True).first()
    if alert is None:
        return None
    alert.cleared_at = timezone.now()
    alert.cleared_detail = detail
    alert.save(update_fields=["cleared_at", "cleared_detail"])
    alert_notify_later(alert_id=alert.pk, event=CLEARED)
    return alert
