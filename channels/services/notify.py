"""Alert notifications: a signed JSON event to a webhook and an e-mail, when an alert opens
and when it clears.

Queued by `alert_raise` / `alert_clear` after their transaction commits (a rolled-back alert
announces nothing) and sent by a Celery task, never inline. Destinations: the channel's own
(`ChannelHealth.notify_webhook_url`, `notify_emails`), else the global SYNCSVC_ALERT_WEBHOOK_URL
and SYNCSVC_ALERT_EMAILS. A failed delivery is logged, never raised.

The webhook body is signed as syncsvc's channel webhooks are (see channels/adapters/webhook.py):

    X-Syncsvc-Timestamp: 1700000000
    X-Syncsvc-Signature: v1=hex(HMAC-SHA256(SYNCSVC_ALERT_WEBHOOK_SECRET, b"1700000000." + body))
    {"events": [{"id": "alert-12-opened", "type": "alert.opened", "schema_version": 1,
                 "occurred_at": "...", "data": {"id", "kind", "channel": {...}, "detail", ...}}]}

The event is built by `channels.contracts.events` (schemas in `channels/contracts/schemas/`).
"""
from __future__ import annotations

import json
import logging
import smtplib
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from ..adapters.webhook import sign
from ..contracts.events import alert_event
from ..models import Alert, ChannelHealth

log = logging.getLogger(__name__)

OPENED, CLEARED = "opened", "cleared"
EVENTS = (OPENED, CLEARED)


@dataclass(frozen=True)
class Delivery:
    webhook: str = "none"  # none | sent | failed
    emails: str = "none"


def alert_notify_later(*, alert_id: int, event: str) -> None:
    """Queue the notification of this alert's `event` for after the current commit."""
    from ..tasks import notify_alert

    def send() -> None:
        try:
            notify_alert.delay(alert_id, event)
        except (RedisError, OperationalError) as exc:  # a broker outage must not fail the caller
            log.warning("alert %s %s: notification not queued (%s)", alert_id, event, exc)

    transaction.on_commit(send)


def alert_notify(*, alert_id: int, event: str) -> Delivery:
    """Send the alert's `event` (opened | cleared) to its destinations; records `notified_at`
    when anything was delivered."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    alert = Alert.objects.select_related("channel").filter(pk=alert_id).first()
    if alert is None:
        return Delivery()
    health = ChannelHealth.objects.filter(channel_id=alert.channel_id).first()
    config = settings.SYNCSVC
    webhook_url = (health.notify_webhook_url if health else "") or config["ALERT_WEBHOOK_URL"]
    emails = _addresses((health.notify_emails if health else "") or config["ALERT_EMAILS"])
    delivery = Delivery(
        webhook=_post(webhook_url, alert, event) if webhook_url else "none",
        emails=_mail(emails, alert, event) if emails else "none",
    )
    if "sent" in (delivery.webhook, delivery.emails):
        Alert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())
    return delivery


def _addresses(raw: str) -> list[str]:
    return [address.strip() for address in raw.replace(";", ",").split(",") if address.strip()]


def _post(url: str, alert: Alert, event: str) -> str:
    occurred = alert.cleared_at if event == CLEARED else alert.opened_at
    payload = {"events": [alert_event(alert=alert, event=event, occurred_at=occurred or timezone.now())]}
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-Syncsvc-Timestamp": str(timestamp),
               "X-Syncsvc-Delivery": f"alert-{alert.pk}-{event}"}
    secret = settings.SYNCSVC["ALERT_WEBHOOK_SECRET"]
    if secret:
        headers["X-Syncsvc-Signature"] = sign(secret, timestamp, body)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=settings.SYNCSVC["ALERT_WEBHOOK_TIMEOUT_S"])
    except requests.RequestException as exc:
        log.warning("alert %s %s: webhook %s failed: %s", alert.pk, event, url, exc)
        return "failed"
    if not response.ok:
        log.warning("alert %s %s: webhook %s answered %s: %s", alert.pk, event, url, response.status_code, response.text[:200])
        return "failed"
    return "sent"


def _mail(addresses: list[str], alert: Alert, event: str) -> str:
    channel = alert.channel
    subject = f"[syncsvc] {alert.kind} {event} on {channel.name}"
    lines = [f"{alert.kind} on channel {channel.name} ({channel.kind}, id {channel.pk}) {event}.", "", alert.detail, ""]
    lines.append(f"Opened at: {alert.opened_at.isoformat(timespec='seconds')}")
    if alert.cleared_at:
        lines += [f"Cleared at: {alert.cleared_at.isoformat(timespec='seconds')}", alert.cleared_detail]
    lines += ["", "Numbers:", json.dumps(alert.data, indent=2, sort_keys=True, default=str)]
    try:
        send_mail(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("alert %s %s: e-mail to %s failed: %s", alert.pk, event, ", ".join(addresses), exc)
        return "failed"
    return "sent"
