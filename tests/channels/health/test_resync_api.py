"""POST/GET /channels/{id}/resync/: what is refused (naming the field, nothing written) and
what a started job owes the channel. Delivery and verification over the real stack are in
test_resync.py."""
from __future__ import annotations

import time

import pytest
from django.db.models import Max
from django.utils import timezone

from channels.models import Incident, ResyncItem, ResyncJob, SyncMark
from channels.services.resync import resync_advance, resync_progress, resync_start
from inventory.models import Change, Product, Variant
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    # Shopify takes price and stock in its pushes (content goes by its nightly bulk refresh).
    channel = ChannelFactory(name="shop", kind="shopify", credentials={"access_token": "shpat_x"})
    product_with_variants(skus=["R-1", "R-2", "R-3"])
    return channel


def _resync(client, channel, body):
    return client.post(f"/api/v1/channels/{channel.pk}/resync/", body, format="json")


def test_unknown_skus_are_refused_naming_them_and_nothing_is_written(ops, channel):
    marks_before = list(SyncMark.objects.order_by("pk").values_list("pk", "due_at", "version"))

    response = _resync(ops, channel, {"skus": ["R-1", "NOPE-1", "NOPE-2"]})

    assert response.status_code == 400, response.content
    body = response.json()
    assert "NOPE-1, NOPE-2" in body["errors"]["skus"][0] and "R-1" not in body["errors"]["skus"][0]
    assert "NOPE-1" in body["detail"]
    assert not ResyncJob.objects.exists() and not ResyncItem.objects.exists()
    assert list(SyncMark.objects.order_by("pk").values_list("pk", "due_at", "version")) == marks_before


@pytest.mark.parametrize(
    ("body", "field", "said"),
    [
        ({}, "skus", "required"),
        ({"skus": ["R-1"], "all": True}, "skus", "not both"),
        ({"skus": []}, "skus", "empty"),
        ({"skus": "R-1"}, "skus", "list"),
        ({"skus": ["R-1"], "aspects": ["content"]}, "aspects", "content"),
        ({"all": "maybe"}, "all", "valid boolean"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(ops, channel, body, field, said):
    response = _resync(ops, channel, body)

    assert response.status_code == 400, response.content
    assert said in response.json()["errors"][field][0]
    assert not ResyncJob.objects.exists()


def test_too_many_skus_are_refused(ops, channel, settings):
    settings.SYNCSVC = {**settings.SYNCSVC, "RESYNC_MAX_SKUS": 2}

    response = _resync(ops, channel, {"skus": ["R-1", "R-2", "R-3"]})

    assert response.status_code == 400
    assert "at most 2" in response.json()["errors"]["skus"][0]


def test_a_disabled_channel_is_a_409_saying_so(ops, channel):
    channel.enabled = False
    channel.save()

    response = _resync(ops, channel, {"skus": ["R-1"]})

    assert response.status_code == 409
    assert "disabled" in response.json()["errors"]["channel"][0]
    assert not ResyncJob.objects.exists()


def test_a_pim_token_may_not_resync(pim, channel):
    assert _resync(pim, channel, {"skus": ["R-1"]}).status_code == 403


def test_a_resync_owes_the_skus_at_their_latest_change_now_and_revives_given_up_marks(ops, channel):
    # given: R-1's price mark gave up after failures, R-2's settled an hour ago
    SyncMark.objects.filter(variant__sku="R-1", aspect="price").update(
        failed_at=timezone.now(), attempts=12, last_error="http_503: down", due_at=timezone.now()
    )
    SyncMark.objects.filter(variant__sku="R-2").update(due_at=None, delivered_at=timezone.now())
    latest = {
        (row["variant_id"], row["aspect"]): row["v"]
        for row in Change.objects.values("variant_id", "aspect").annotate(v=Max("pk"))
    }

    # when
    started = time.time()
    response = _resync(ops, channel, {"skus": ["R-1", "R-2"]})

    # then
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["job"] and body["total"] == 2 and body["status"] == "queued" and body["done"] == 0
    # before anything was delivered, the ETA comes from the channel's rate limit
    assert body["limit_rate_per_s"] > 0 and body["eta_s"] == pytest.approx(2 / body["limit_rate_per_s"], abs=0.01)
    assert body["verification"] == "available"
    marks = SyncMark.objects.filter(variant__sku__in=["R-1", "R-2"])
    assert marks.count() == 4  # price and inventory of each
    for mark in marks:
        assert mark.failed_at is None and mark.attempts == 0
        assert mark.due_at is not None and mark.due_at.timestamp() <= time.time() and mark.due_at.timestamp() >= started - 1
        assert mark.version == latest[(mark.variant_id, mark.aspect)]
    job = ResyncJob.objects.get(pk=body["job"])
    assert sorted(job.items.values_list("sku", flat=True)) == ["R-1", "R-2"]
    assert job.aspects == ["inventory", "price"] and job.requested_by.startswith("ops-")


def test_the_job_shows_progress_and_its_items(ops, channel):
    job = resync_start(channel=channel, skus=["R-1", "R-2", "R-3"], requested_by="test")
    ResyncItem.objects.filter(job=job, sku="R-1").update(state="verified")
    ResyncItem.objects.filter(job=job, sku="R-2").update(state="failed", detail="price: http_503")

    response = ops.get(f"/api/v1/channels/{channel.pk}/resync/{job.pk}/?limit=2")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3 and body["done"] == 2 and body["verified"] == 1 and body["failed"] == 1
    assert body["counts"] == {"pending": 1, "delivered": 0, "verified": 1, "mismatch": 0, "failed": 1}
    assert [item["sku"] for item in body["items"]] == ["R-1", "R-2"] and body["items_more"] is True
    failed = ops.get(f"/api/v1/channels/{channel.pk}/resync/{job.pk}/?state=failed").json()["items"]
    assert failed == [{"sku": "R-2", "state": "failed", "detail": "price: http_503", "updated_at": failed[0]["updated_at"]}]
    assert ops.get(f"/api/v1/channels/{channel.pk}/resync/{job.pk}/?state=nope").status_code == 400
    assert ops.get(f"/api/v1/channels/{channel.pk + 99}/resync/{job.pk}/").status_code == 404


def test_all_skus_of_a_large_catalog_start_in_set_based_statements(channel, django_assert_max_num_queries):
    # given: 20,000 more variants (made directly: the catalog's own services are not the point)
    product = Product.objects.create(handle="bulk", title="Bulk")
    Variant.objects.bulk_create([Variant(product=product, sku=f"B-{n:05d}", price="1.00") for n in range(20_000)],
                                batch_size=5000)
    SyncMark.objects.filter(channel=channel).update(due_at=None, delivered_at=timezone.now())

    # when: the request writes the job and its items
    with django_assert_max_num_queries(20):
        job = resync_start(channel=channel, all_skus=True)

    # then
    assert job.total == 20_003 and job.items.count() == 20_003 and job.status == "queued"
    assert resync_progress(job)["pending"] == 20_003

    # when: its first step owes the whole catalog
    with django_assert_max_num_queries(60):
        resync_advance(job_id=job.pk)

    # then
    assert SyncMark.objects.filter(channel=channel, due_at__isnull=False).count() == 2 * 20_003
    job.refresh_from_db()
    assert job.status == "running" and job.started_at is not None


def test_reconcile_now_is_refused_for_a_channel_that_cannot_be_read_back(ops):
    webhook = ChannelFactory(name="hook")

    response = ops.post(f"/api/v1/channels/{webhook.pk}/reconcile/")

    assert response.status_code == 409 and "cannot be read back" in response.json()["errors"]["channel"][0]


def test_incidents_are_listed_and_filtered(ops, channel):
    incident = Incident.objects.create(title="t", cause="c", skus=["R-1"], detected_at=timezone.now())
    incident.channels.add(channel)

    assert [row["id"] for row in ops.get("/api/v1/incidents/", {"open": "true"}).json()["results"]] == [incident.pk]
    assert ops.get("/api/v1/incidents/", {"open": "false"}).json()["results"] == []
    assert "open" in ops.get("/api/v1/incidents/", {"open": "maybe"}).json()["errors"]
