"""Incidents: something went wrong for some SKUs on some channels. One is opened when a
dead, degraded or drift alert opens (`incident_for_alert`) or when an operator resyncs SKUs
that failed (`incident_for_resync`); a channel has at most one open incident, which later
alerts and resyncs join. It is closed (`recovered_at`) when its resyncs verified every SKU
and its channels' alerts have cleared (`incidents_close_recovered`)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..models import Alert, Channel, Drift, Incident, ResyncJob, SyncAttempt, SyncMark

INCIDENT_ALERT_KINDS = (Alert.Kind.DEAD_CHANNEL, Alert.Kind.DEGRADED_CHANNEL, Alert.Kind.DRIFT)
MAX_SKUS = 1000  # SKUs listed on an incident (a full-catalog resync verifies more)
KIND_NAMES = {"shopify": "Shopify", "woocommerce": "WooCommerce", "magento": "Magento", "amazon": "Amazon",
              "webhook": "The webhook receiver"}
_HTTP_CODE = re.compile(r"^http_(\d{3})$", re.IGNORECASE)


def failure_cause(*, channel: Channel, since: datetime) -> tuple[str, datetime | None]:
    """What the channel's first failure since `since` says, e.g. "Magento answered 503
    (http_503) from 10:01:02", and when it happened; ("", None) without failures."""
    first = (
        SyncAttempt.objects.filter(channel=channel, status=SyncAttempt.Status.FAILURE, timestamp__gte=since)
        .order_by("timestamp").only("error_code", "error_message", "timestamp").first()
    )
    if first is None:
        return "", None
    kind = KIND_NAMES.get(channel.kind, channel.kind)
    at = timezone.localtime(first.timestamp).strftime("%H:%M:%S")
    status = _HTTP_CODE.match(first.error_code or "")
    if status:
        said = f"answered {status.group(1)} ({first.error_code})"
    else:
        message = f": {first.error_message[:120]}" if first.error_message else ""
        said = f"failed with {first.error_code or 'an error'}{message}"
    return f"{kind} {said} from {at} on channel {channel.name}", first.timestamp


def failed_skus(*, channel: Channel, since: datetime, among: Iterable[str] | None = None) -> list[str]:
    """SKUs that failed on the channel since `since` (a failure attempt, or a mark that gave
    up), restricted to `among` when given."""
    wanted = None if among is None else set(among)
    failed = set(
        SyncAttempt.objects.filter(channel=channel, status=SyncAttempt.Status.FAILURE, timestamp__gte=since)
        .values_list("sku", flat=True).distinct()[: MAX_SKUS * 10]
    )
    failed |= set(
        SyncMark.objects.filter(channel=channel, failed_at__isnull=False).values_list("variant__sku", flat=True)[:MAX_SKUS]
    )
    failed |= set(
        Drift.objects.filter(channel=channel, resolved_at__isnull=True).values_list("sku", flat=True)[:MAX_SKUS]
    )
    return sorted(failed if wanted is None else failed & wanted)


def failures_since(channel: Channel) -> datetime:
    """Failures count from the lookback, or from when the channel's last incident closed."""
    lookback = timezone.now() - timedelta(seconds=settings.SYNCSVC["INCIDENT_LOOKBACK_S"])
    closed = Incident.objects.filter(channels=channel, recovered_at__isnull=False).aggregate(at=Max("recovered_at"))["at"]
    return max(lookback, closed) if closed else lookback


def incident_open_of(channel: Channel) -> Incident | None:
    return Incident.objects.filter(channels=channel, recovered_at__isnull=True).order_by("-detected_at").first()


def incident_open(*, channels: Iterable[Channel], title: str, cause: str = "", skus: Iterable[str] = (),
                  detected_at: datetime | None = None) -> Incident:
    """Open an incident, or join the channel's open one (its SKUs, its cause when it had none)."""
    channels = list(channels)
    with transaction.atomic():
        # One open incident per channel: concurrent openers queue on the channel rows.
        list(Channel.objects.select_for_update().filter(pk__in=[c.pk for c in channels]).order_by("pk"))
        incident = next((i for i in (incident_open_of(c) for c in channels) if i is not None), None)
        if incident is None:
            incident = Incident.objects.create(
                title=title[:200], cause=cause, skus=sorted(set(skus))[:MAX_SKUS],
                detected_at=detected_at or timezone.now(),
            )
        else:
            incident_add(incident=incident, skus=skus, cause=cause, detected_at=detected_at)
        incident.channels.add(*channels)
    return incident


def incident_add(*, incident: Incident, skus: Iterable[str] = (), cause: str = "", detected_at: datetime | None = None) -> None:
    merged = sorted(set(incident.skus) | set(skus))[:MAX_SKUS]
    fields = []
    if merged != incident.skus:
        incident.skus = merged
        fields.append("skus")
    if cause and not incident.cause:
        incident.cause = cause
        fields.append("cause")
    if detected_at and detected_at < incident.detected_at:
        incident.detected_at = detected_at
        fields.append("detected_at")
    if fields:
        incident.save(update_fields=fields)


def incident_for_alert(alert: Alert) -> Incident | None:
    """The incident of a dead, degraded or drift alert: the channel's open one, or a new one
    (its cause from the channel's first failure, its SKUs from the alert's data or the
    failed SKUs). Links the alert to it. Other kinds (inbound silence) open none."""
    if alert.kind not in INCIDENT_ALERT_KINDS:
        return None
    if alert.incident_id:
        return alert.incident
    channel = alert.channel
    since = min(failures_since(channel), alert.opened_at)
    cause, first_failure = failure_cause(channel=channel, since=since)
    if alert.kind == Alert.Kind.DRIFT:
        cause = alert.detail
    skus = (alert.data or {}).get("skus") or failed_skus(channel=channel, since=since)
    label = Alert.Kind(alert.kind).label
    incident = incident_open(
        channels=[channel], title=f"{label} on {channel.name}", cause=cause or alert.detail, skus=skus,
        detected_at=min(filter(None, [first_failure, alert.opened_at])),
    )
    Alert.objects.filter(pk=alert.pk).update(incident=incident)
    alert.incident = incident
    return incident


def incident_for_resync(*, channel: Channel, skus: Iterable[str] | None) -> Incident | None:
    """When a resync covers SKUs that failed on the channel (since the lookback or its last
    incident): the incident it repairs (the channel's open one, or a new one). `skus` None:
    every SKU (a full resync)."""
    since = failures_since(channel)
    failed = failed_skus(channel=channel, since=since, among=skus)
    open_incident = incident_open_of(channel)
    if not failed:
        return open_incident
    cause, first_failure = failure_cause(channel=channel, since=since)
    return incident_open(
        channels=[channel], title=f"Failed SKUs on {channel.name}", cause=cause, skus=failed,
        detected_at=first_failure or timezone.now(),
    )


def incident_close_if_recovered(incident: Incident) -> bool:
    """Close the incident when its resyncs are finished, the latest one per channel verified
    every SKU (status done), and none of its channels has an open dead/degraded/drift alert."""
    if incident.recovered_at is not None:
        return False
    jobs = list(ResyncJob.objects.filter(incident=incident).order_by("created_at"))
    if not jobs or any(job.finished_at is None for job in jobs):
        return False
    latest = {job.channel_id: job for job in jobs}
    if any(job.status != ResyncJob.Status.DONE for job in latest.values()):
        return False
    channel_ids = list(incident.channels.values_list("pk", flat=True))
    if Alert.objects.filter(channel_id__in=channel_ids, kind__in=INCIDENT_ALERT_KINDS, cleared_at__isnull=True).exists():
        return False
    return bool(Incident.objects.filter(pk=incident.pk, recovered_at__isnull=True).update(recovered_at=timezone.now()))


def incidents_for_open_alerts() -> int:
    """Beat: give every open dead, degraded or drift alert without one its incident (an alert
    opened by the evaluation; reconciliation links its own at once). Returns how many."""
    alerts = Alert.objects.filter(kind__in=INCIDENT_ALERT_KINDS, cleared_at__isnull=True, incident__isnull=True)
    return sum(incident_for_alert(alert) is not None for alert in alerts.select_related("channel"))


def incidents_close_recovered() -> int:
    """Beat: close every open incident that has recovered (its alerts may clear after its resync)."""
    return sum(incident_close_if_recovered(i) for i in Incident.objects.filter(recovered_at__isnull=True))
