"""The merchandisers' dashboard in the admin: who may see it, what it shows per channel, and its
"Resync failed SKUs" button (the browser flow is tests/browser/test_dashboard.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from channels.dashboard import latency_sparkline, resync_candidates
from channels.models import Alert, Incident, ResyncItem, ResyncJob, SyncAttempt
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


def _attempt(channel, sku, status, *, at=None, latency_ms=None, resolved=False, code=""):
    at = at or timezone.now()
    return SyncAttempt.objects.create(
        channel=channel, sku=sku, event_type="price", status=status, error_code=code, version=1, committed_at=at,
        started_at=at, timestamp=at, latency_ms=latency_ms, resolved_at=at if resolved else None,
    )


def _staff(role: str | None = "merchandiser", **fields) -> Client:
    user = User.objects.create_user(username=f"staff-{role}", password="pw-123456", is_staff=True, **fields)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_users_are_sent_to_the_admin_login(client):
    for url in ("/admin/dashboard/", "/admin/dashboard/data/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_a_logged_in_user_who_is_not_staff_is_sent_to_the_login_too():
    user = User.objects.create_user(username="pim-only", password="pw-123456")
    client = Client()
    client.force_login(user)

    assert client.get("/admin/dashboard/").status_code == 302


def test_staff_see_every_channel_with_its_state_alerts_and_failures():
    # given: one healthy channel, one failing with an open alert, one disabled
    healthy = ChannelFactory(name="shop-ok")
    failing = ChannelFactory(name="mage-down", kind="magento")
    paused = ChannelFactory(name="amzn-off", kind="amazon", enabled=False)
    _attempt(healthy, "A-1", SyncAttempt.Status.SUCCESS, latency_ms=40.0)
    _attempt(failing, "A-1", SyncAttempt.Status.FAILURE, code="http_503")
    Alert.objects.create(channel=failing, kind="degraded_channel", detail="error rate 100 % over 10 min",
                         opened_at=timezone.now(), last_seen_at=timezone.now())
    client = _staff()

    # when
    page = client.get("/admin/dashboard/")
    data = client.get("/admin/dashboard/data/").json()

    # then
    assert page.status_code == 200
    html = page.content.decode()
    for channel in (healthy, failing, paused):
        assert f'data-channel-name="{channel.name}"' in html
    by_name = {c["name"]: c for c in data["channels"]}
    assert set(by_name) == {"shop-ok", "mage-down", "amzn-off"}
    assert by_name["shop-ok"]["state"] == "healthy"
    assert by_name["amzn-off"]["state"] == "paused"
    assert by_name["mage-down"]["state"] in ("degraded", "dead")
    assert f'data-state="{by_name["mage-down"]["state"]}"' in html and 'data-state="paused"' in html
    assert [a["kind"] for a in by_name["mage-down"]["alerts"]] == ["degraded_channel"]
    assert "error rate 100 % over 10 min" in html
    assert by_name["mage-down"]["failures"][0]["error_code"] == "http_503" and "http_503" in html
    assert by_name["mage-down"]["failed_skus"] == 1 and by_name["shop-ok"]["failed_skus"] == 0


def test_the_admin_index_links_to_the_dashboard():
    response = _staff().get("/admin/")

    assert response.status_code == 200 and b'href="/admin/dashboard/"' in response.content


def test_the_sparkline_is_the_p95_per_minute_of_the_last_hour():
    # given: minute -2 has latencies 10..100, minute -1 has one of 50, and two hours ago one of 9999
    channel = ChannelFactory()
    now = timezone.now().replace(second=30, microsecond=0)
    for value in range(10, 101, 10):
        _attempt(channel, "S-1", SyncAttempt.Status.SUCCESS, at=now - timedelta(minutes=2), latency_ms=float(value))
    _attempt(channel, "S-1", SyncAttempt.Status.SUCCESS, at=now - timedelta(minutes=1), latency_ms=50.0)
    _attempt(channel, "S-1", SyncAttempt.Status.SUCCESS, at=now - timedelta(hours=2), latency_ms=9999.0)
    _attempt(channel, "S-1", SyncAttempt.Status.FAILURE, at=now - timedelta(minutes=1), latency_ms=8888.0)

    # when
    spark = latency_sparkline(channel=channel, now=now)

    # then: 60 minutes, the last one now; p95 of 10..100 interpolated as percentile_cont does
    assert len(spark["p95_ms"]) == 60
    assert spark["p95_ms"][-3] == 95.5 and spark["p95_ms"][-2] == 50.0 and spark["p95_ms"][-1] is None
    assert spark["max_ms"] == 95.5 and spark["last_ms"] == 50.0
    assert len(spark["points"].split()) == 2
    (x1, y1), (x2, y2) = (map(float, point.split(",")) for point in spark["points"].split())
    assert x1 < x2 and y1 < y2  # the busier minute is drawn higher (SVG's y grows downwards)


def test_the_resync_candidates_are_the_skus_failed_on_that_channel_since_its_last_incident_closed():
    channel, other = ChannelFactory(), ChannelFactory()
    closed = Incident.objects.create(title="earlier outage", detected_at=timezone.now() - timedelta(minutes=9),
                                     recovered_at=timezone.now() - timedelta(minutes=5))
    closed.channels.add(channel)
    _attempt(channel, "OLD-1", SyncAttempt.Status.FAILURE, at=timezone.now() - timedelta(minutes=6))
    _attempt(channel, "F-1", SyncAttempt.Status.FAILURE)
    _attempt(channel, "F-1", SyncAttempt.Status.FAILURE)
    _attempt(channel, "F-2", SyncAttempt.Status.FAILURE, resolved=True)
    _attempt(channel, "OK-1", SyncAttempt.Status.SUCCESS)
    _attempt(other, "F-3", SyncAttempt.Status.FAILURE)

    assert resync_candidates(channel=channel) == ["F-1", "F-2"]


def test_the_resync_button_queues_a_job_for_exactly_the_failed_skus():
    # given
    product_with_variants(skus=["F-1", "F-2", "OK-1"])
    channel = ChannelFactory(kind="magento")
    _attempt(channel, "F-1", SyncAttempt.Status.FAILURE, code="http_503")
    _attempt(channel, "F-2", SyncAttempt.Status.FAILURE, code="http_503")
    _attempt(channel, "OK-1", SyncAttempt.Status.SUCCESS)
    client = _staff("merchandiser")

    # when
    response = client.post(f"/admin/dashboard/channels/{channel.pk}/resync/")

    # then
    assert response.status_code == 302 and response["Location"] == "/admin/dashboard/"
    job = ResyncJob.objects.get(channel=channel)
    assert sorted(ResyncItem.objects.filter(job=job).values_list("sku", flat=True)) == ["F-1", "F-2"]
    assert job.requested_by == "staff-merchandiser"


def test_the_resync_button_only_answers_post_and_needs_a_resync_role():
    channel = ChannelFactory()
    _attempt(channel, "F-1", SyncAttempt.Status.FAILURE)
    url = f"/admin/dashboard/channels/{channel.pk}/resync/"

    assert _staff("merchandiser").get(url).status_code == 405
    assert _staff("pim").post(url).status_code == 403
    assert not ResyncJob.objects.exists()


def test_the_resync_button_enforces_csrf():
    channel = ChannelFactory()
    _attempt(channel, "F-1", SyncAttempt.Status.FAILURE)
    user = User.objects.create_user(username="ops-csrf", password="pw-123456", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(f"/admin/dashboard/channels/{channel.pk}/resync/")

    assert response.status_code == 403 and not ResyncJob.objects.exists()
