"""Alert notifications: a signed JSON event per opening and clearing, POSTed by the real worker
after commit to a real HTTP receiver; e-mail through Django's mail; failures never raise."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.conf import settings

from channels.models import Alert, ChannelHealth
from channels.services.alerts import alert_clear, alert_raise
from channels.services.notify import alert_notify
from syncsvc.processes import free_port
from tests.factories import ChannelFactory
from tests.support.receiver import Delivery, WebhookReceiver
from tests.support.sandbox import wait_until


@pytest.fixture
def receiver():
    with WebhookReceiver("/alerts", status=204) as endpoint:
        yield endpoint


def _verified(delivery: Delivery) -> dict:
    """The event in a delivery whose signature checks out with the alert webhook secret."""
    timestamp = delivery.headers["X-Syncsvc-Timestamp"]
    expected = hmac.new(settings.SYNCSVC["ALERT_WEBHOOK_SECRET"].encode(), f"{timestamp}.".encode() + delivery.body,
                        hashlib.sha256).hexdigest()
    assert delivery.headers["X-Syncsvc-Signature"] == f"v1={expected}"
    (event,) = json.loads(delivery.body)["events"]
    return event


@pytest.mark.stack
def test_the_webhook_receives_signed_opened_and_cleared_events_from_the_worker(live, receiver):
    # given
    channel = ChannelFactory(name="magento-eu")
    ChannelHealth.objects.create(channel=channel, notify_webhook_url=receiver.url)

    # when
    alert, opened = alert_raise(channel=channel, kind="drift", detail="3 SKUs differ from the PIM", data={"skus": 3})

    # then
    assert opened
    wait_until(lambda: len(receiver.received) == 1, timeout=15, message="the opening was never posted")
    event = _verified(receiver.received[0])
    assert event["type"] == "alert.opened" and event["id"] == f"alert-{alert.pk}-opened"
    data = event["data"]
    assert data["kind"] == "drift" and data["open"] is True and data["detail"] == "3 SKUs differ from the PIM"
    assert data["channel"] == {"id": channel.pk, "name": "magento-eu", "kind": "webhook"} and data["data"] == {"skus": 3}
    wait_until(lambda: Alert.objects.get(pk=alert.pk).notified_at, message="notified_at never recorded")

    # when: refreshed (no new event), then cleared
    alert_raise(channel=channel, kind="drift", detail="2 SKUs differ from the PIM", data={"skus": 2})
    alert_clear(channel=channel, kind="drift", detail="recovered: every SKU matches")

    # then
    wait_until(lambda: len(receiver.received) == 2, timeout=15, message="the clearing was never posted")
    event = _verified(receiver.received[1])
    assert event["type"] == "alert.cleared" and event["data"]["open"] is False
    assert event["data"]["cleared_detail"] == "recovered: every SKU matches" and event["data"]["cleared_at"]
    assert len(receiver.received) == 2


@pytest.mark.django_db
def test_an_alert_is_announced_after_commit_once_and_a_refresh_announces_nothing(django_capture_on_commit_callbacks):
    # given
    channel = ChannelFactory()

    # when / then
    with django_capture_on_commit_callbacks() as opened:
        alert_raise(channel=channel, kind="dead_channel", detail="d", data={})
    with django_capture_on_commit_callbacks() as refreshed:
        alert_raise(channel=channel, kind="dead_channel", detail="d again", data={})
    with django_capture_on_commit_callbacks() as cleared:
        alert_clear(channel=channel, kind="dead_channel", detail="recovered")
        alert_clear(channel=channel, kind="dead_channel", detail="recovered")  # nothing open any more
    assert (len(opened), len(refreshed), len(cleared)) == (1, 0, 1)


@pytest.mark.django_db
def test_e_mail_goes_to_the_channels_addresses_or_the_global_ones(mailoutbox, settings):
    # given
    settings.SYNCSVC = {**settings.SYNCSVC, "ALERT_EMAILS": "oncall@example.com", "ALERT_WEBHOOK_URL": ""}
    own = ChannelFactory(name="shop-a")
    ChannelHealth.objects.create(channel=own, notify_emails="ops@example.com, lead@example.com")
    other = ChannelFactory(name="shop-b")
    alert, _ = alert_raise(channel=own, kind="dead_channel", detail="No successful write in 2 min", data={"owed": 7})
    other_alert, _ = alert_raise(channel=other, kind="inbound_silence", detail="No order for 3 h", data={})

    # when
    delivery = alert_notify(alert_id=alert.pk, event="opened")
    alert_notify(alert_id=other_alert.pk, event="opened")

    # then
    assert delivery.emails == "sent" and delivery.webhook == "none"
    first, second = mailoutbox
    assert first.to == ["ops@example.com", "lead@example.com"] and first.subject == "[syncsvc] dead_channel opened on shop-a"
    assert "No successful write in 2 min" in first.body and '"owed": 7' in first.body
    assert first.from_email == settings.DEFAULT_FROM_EMAIL
    assert second.to == ["oncall@example.com"]
    assert Alert.objects.get(pk=alert.pk).notified_at is not None


@pytest.mark.django_db
def test_a_webhook_that_cannot_be_reached_is_logged_and_does_not_raise(caplog, settings):
    # given: nothing listens there
    settings.SYNCSVC = {**settings.SYNCSVC, "ALERT_EMAILS": "", "ALERT_WEBHOOK_TIMEOUT_S": 1.0}
    channel = ChannelFactory()
    ChannelHealth.objects.create(channel=channel, notify_webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    alert, _ = alert_raise(channel=channel, kind="degraded_channel", detail="40% failed", data={})

    # when
    delivery = alert_notify(alert_id=alert.pk, event="opened")

    # then
    assert delivery.webhook == "failed"
    assert Alert.objects.get(pk=alert.pk).notified_at is None
    assert any("webhook" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
