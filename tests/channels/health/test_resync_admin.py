"""The admin's resync actions call the same service as the API; the resync, drift and
incident pages render."""
from __future__ import annotations

import pytest
from django.utils import timezone

from channels.models import Drift, Incident, ResyncJob, SyncAttempt
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    channel = ChannelFactory(name="shop", kind="woocommerce", credentials={"consumer_key": "k", "consumer_secret": "s"})
    product_with_variants(skus=["AD-1", "AD-2"])
    return channel


def _failure(channel, sku):
    now = timezone.now()
    return SyncAttempt.objects.create(
        channel=channel, sku=sku, event_type="price", status="failure", error_code="http_503", version=1,
        committed_at=now, started_at=now, timestamp=now,
    )


def test_resync_failed_skus_resyncs_only_those_and_records_the_incident(admin_client, channel):
    # given
    _failure(channel, "AD-2")

    # when
    response = admin_client.post("/admin/channels/channel/", {"action": "resync_failed_skus", "_selected_action": [channel.pk]},
                                 follow=True)

    # then
    assert response.status_code == 200
    job = ResyncJob.objects.get()
    assert list(job.items.values_list("sku", flat=True)) == ["AD-2"] and job.requested_by == "admin"
    incident = Incident.objects.get()
    assert job.incident == incident and incident.skus == ["AD-2"]
    assert incident.cause.startswith("WooCommerce answered 503 (http_503) from ")


def test_resync_all_and_the_attempts_action(admin_client, channel):
    attempt = _failure(channel, "AD-1")
    admin_client.post("/admin/channels/channel/", {"action": "resync_all_skus", "_selected_action": [channel.pk]})
    admin_client.post("/admin/channels/syncattempt/", {"action": "resync_these_skus", "_selected_action": [attempt.pk]})

    jobs = list(ResyncJob.objects.order_by("created_at"))
    assert [job.all_skus for job in jobs] == [True, False]
    assert jobs[0].total == 2 and list(jobs[1].items.values_list("sku", flat=True)) == ["AD-1"]


def test_the_pages_render_with_progress(admin_client, channel):
    admin_client.post("/admin/channels/channel/", {"action": "resync_all_skus", "_selected_action": [channel.pk]})
    job = ResyncJob.objects.get()
    Drift.objects.create(channel=channel, sku="AD-1", aspect="price", expected="10.00", live="7.00",
                         detected_at=timezone.now(), last_seen_at=timezone.now())

    listing = admin_client.get("/admin/channels/resyncjob/")
    assert listing.status_code == 200 and "0 / 2 (0.0%)" in listing.content.decode()
    page = admin_client.get(f"/admin/channels/resyncjob/{job.pk}/change/")
    assert page.status_code == 200 and "AD-2" in page.content.decode()
    assert admin_client.get("/admin/channels/drift/").status_code == 200
    assert admin_client.get("/admin/channels/incident/").status_code == 200
    assert admin_client.get("/admin/channels/resyncitem/").status_code == 200
