"""The admin: alerts listed open first (read-only), thresholds edited on the channel, circuits
read-only with "probe now" and "close now"."""
from __future__ import annotations

import pytest
from django.utils import timezone

from channels.models import Alert, ChannelCircuit, ChannelHealth
from channels.services.alerts import alert_clear, alert_raise
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_alerts_are_listed_open_first_filterable_and_read_only(admin_client):
    # given
    channel = ChannelFactory(name="mage")
    alert_raise(channel=channel, kind="dead_channel", detail="cleared one", data={})
    alert_clear(channel=channel, kind="dead_channel", detail="recovered")
    alert_raise(channel=channel, kind="degraded_channel", detail="still failing 40%", data={})

    # when
    page = admin_client.get("/admin/channels/alert/")
    open_only = admin_client.get("/admin/channels/alert/?open=yes")

    # then
    assert page.status_code == 200
    content = page.content.decode()
    assert content.index("still failing 40%") < content.index("cleared one")
    assert "cleared one" not in open_only.content.decode()
    assert admin_client.get(f"/admin/channels/alert/{Alert.objects.first().pk}/change/").status_code == 200
    assert admin_client.get("/admin/channels/alert/add/").status_code == 403


def test_thresholds_are_edited_on_the_channel_page(admin_client):
    # given
    channel = ChannelFactory(name="shop")
    page = admin_client.get(f"/admin/channels/channel/{channel.pk}/change/")
    assert page.status_code == 200 and b"health-TOTAL_FORMS" in page.content
    assert "alert thresholds and notifications" in page.content.decode().lower()

    # when
    form = {
        "name": "shop", "kind": "webhook", "base_url": channel.base_url, "enabled": "on", "mode": "live",
        "safety_stock": "0", "settings": "{}", "new_credentials": "",
        "health-TOTAL_FORMS": "1", "health-INITIAL_FORMS": "0", "health-MIN_NUM_FORMS": "0", "health-MAX_NUM_FORMS": "1",
        "health-0-channel": str(channel.pk), "health-0-expected_interval_s": "30", "health-0-degraded_error_rate": "0.5",
        "health-0-degraded_window_s": "300", "health-0-degraded_min_attempts": "10", "health-0-drift_price_tolerance": "0",
        "health-0-drift_stock_tolerance": "0", "health-0-inbound_silence_s": "7200", "health-0-reconcile_cycle_s": "86400",
        "health-0-notify_webhook_url": "https://ops.example.com/hook", "health-0-notify_emails": "ops@example.com",
        # The threshold rules' inline (none here).
        "threshold_rules-TOTAL_FORMS": "0", "threshold_rules-INITIAL_FORMS": "0",
    }
    response = admin_client.post(f"/admin/channels/channel/{channel.pk}/change/", form)

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    health = ChannelHealth.objects.get(channel=channel)
    assert (health.expected_interval_s, health.degraded_error_rate, health.inbound_silence_s) == (30, 0.5, 7200)
    assert health.notify_emails == "ops@example.com"


def test_an_open_circuit_can_be_probed_or_closed_from_the_admin(admin_client):
    # given
    now = timezone.now()
    channel = ChannelFactory(name="dead-one")
    ChannelCircuit.objects.create(channel=channel, state="open", opened_at=now, probe_at=now.replace(year=now.year + 1),
                                  consecutive_failures=5, reason="http_503: Service Unavailable")
    assert b"http_503" in admin_client.get("/admin/channels/channelcircuit/").content

    # when: probe now
    admin_client.post("/admin/channels/channelcircuit/", {"action": "probe_now", "_selected_action": [channel.pk]})

    # then: still open, probe due now
    circuit = ChannelCircuit.objects.get(channel=channel)
    assert circuit.state == "open" and circuit.probe_at <= timezone.now()

    # when: close now
    admin_client.post("/admin/channels/channelcircuit/", {"action": "close_now", "_selected_action": [channel.pk]})

    # then
    circuit.refresh_from_db()
    assert circuit.state == "closed" and circuit.consecutive_failures == 0
