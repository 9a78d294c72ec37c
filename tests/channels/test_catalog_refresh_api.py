"""Catalog refresh requests and schedules: what is refused (naming the field, nothing written),
how chunks are planned, the per-channel django-celery-beat schedule, the admin. Running a
refresh over the real stack is in test_catalog_refresh.py."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from channels.models import CatalogRefresh, CatalogRefreshChunk, Channel
from channels.services.refresh_schedule import catalog_refresh_from_schedule
from inventory.capture import suppressed
from inventory.models import Product, Variant
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

WOO = {"consumer_key": "k", "consumer_secret": "s"}


def _catalog(count: int) -> None:
    with transaction.atomic(), suppressed():
        products = Product.objects.bulk_create(Product(handle=f"h-{i}", title=f"T {i}") for i in range(count))
        Variant.objects.bulk_create(Variant(product=p, sku=f"S-{i}", price=Decimal("1.00")) for i, p in enumerate(products))


@pytest.fixture
def channel():
    _catalog(1234)
    return ChannelFactory(name="shop", kind="amazon", credentials={
        "client_id": "c", "client_secret": "s", "refresh_token": "r", "seller_id": "A1"},
        settings={"catalog_refresh": {"chunk_size": 500}})


def _start(client, channel):
    return client.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")


def test_chunks_are_planned_up_front_by_variant_id(ops, channel):
    response = _start(ops, channel)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["total"] == 1234 and body["status"] == "queued" and body["chunks"]["pending"] == 3
    chunks = list(CatalogRefreshChunk.objects.order_by("seq").values_list("seq", "size", "first_variant_id", "last_variant_id"))
    ids = list(Variant.objects.order_by("pk").values_list("pk", flat=True))
    assert [c[:2] for c in chunks] == [(0, 500), (1, 500), (2, 234)]
    assert [(c[2], c[3]) for c in chunks] == [(ids[0], ids[499]), (ids[500], ids[999]), (ids[1000], ids[-1])]
    assert CatalogRefresh.objects.get().requested_by.startswith("ops-")


def test_a_second_refresh_while_one_is_active_is_refused_and_nothing_is_written(ops, channel):
    assert _start(ops, channel).status_code == 202

    response = _start(ops, channel)

    assert response.status_code == 409, response.content
    assert "in progress" in response.json()["errors"]["channel"][0]
    assert CatalogRefresh.objects.count() == 1 and CatalogRefreshChunk.objects.count() == 3


def test_a_disabled_channel_or_one_without_content_is_refused(ops, channel):
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    assert _start(ops, channel).status_code == 409
    shopless = ChannelFactory(name="hook", kind="webhook")  # takes content: plain pushes, not refused
    assert _start(ops, shopless).status_code == 202
    assert CatalogRefresh.objects.get(channel=shopless).bulk is False
    assert not CatalogRefresh.objects.filter(channel=channel).exists()


def test_only_ops_may_start_and_anyone_may_read_progress(pim, ops, channel):
    assert _start(pim, channel).status_code == 403
    refresh = CatalogRefresh.objects.get(pk=_start(ops, channel).json()["refresh"])

    listing = pim.get(f"/api/v1/channels/{channel.pk}/catalog-refresh/")
    detail = pim.get(f"/api/v1/channels/{channel.pk}/catalog-refresh/{refresh.pk}/?status=pending&limit=2")

    assert listing.status_code == 200 and listing.json()["results"][0]["refresh"] == refresh.pk
    assert detail.status_code == 200
    assert [c["seq"] for c in detail.json()["chunk_list"]] == [0, 1] and detail.json()["chunks_more"] is True
    assert pim.get(f"/api/v1/channels/{channel.pk}/catalog-refresh/{refresh.pk}/?status=nope").status_code == 400


def test_cancel_stops_it_and_a_new_one_may_start(ops, channel):
    refresh = CatalogRefresh.objects.get(pk=_start(ops, channel).json()["refresh"])

    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/{refresh.pk}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/{refresh.pk}/cancel/").status_code == 409
    assert _start(ops, channel).status_code == 202


@pytest.mark.parametrize("value, field", [
    ({"crontab": "every night"}, "settings.catalog_refresh.crontab"),
    ({"crontab": "61 3 * * *"}, "settings.catalog_refresh.crontab"),
    ({"enabled": "yes"}, "settings.catalog_refresh.enabled"),
    ({"chunk_size": 0}, "settings.catalog_refresh.chunk_size"),
    ({"timezone": "Mars/Olympus"}, "settings.catalog_refresh.timezone"),
    ({"cron": "0 3 * * *"}, "settings.catalog_refresh.cron"),
    ("nightly", "settings.catalog_refresh"),
])
def test_bad_refresh_settings_are_refused_naming_the_field(ops, value, field):
    response = ops.post("/api/v1/channels/", {
        "name": "w", "kind": "woocommerce", "base_url": "https://shop.example", "credentials": WOO,
        "settings": {"catalog_refresh": value},
    }, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Channel.objects.exists() and not PeriodicTask.objects.filter(name__startswith="catalog-refresh:").exists()


def test_a_new_channel_gets_a_nightly_schedule_that_its_settings_change(ops):
    # given: a channel made through the API
    response = ops.post("/api/v1/channels/", {
        "name": "w", "kind": "woocommerce", "base_url": "https://shop.example", "credentials": WOO,
    }, format="json")
    assert response.status_code == 201, response.content
    channel_id = response.json()["id"]
    task = PeriodicTask.objects.get(name=f"catalog-refresh:{channel_id}")
    assert task.task == "channels.catalog_refresh_scheduled" and task.args == f"[{channel_id}]" and task.enabled
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "3", "UTC")

    # when: an operator edits it in the admin, then the channel's settings name another time
    task.crontab.hour = "4"
    task.crontab.save()
    ops.patch(f"/api/v1/channels/{channel_id}/", {"settings": {"rate_per_s": 3}}, format="json")
    assert PeriodicTask.objects.get(pk=task.pk).crontab.hour == "4"  # an edit the settings do not name stays
    response = ops.patch(f"/api/v1/channels/{channel_id}/", {"settings": {
        "catalog_refresh": {"crontab": "30 2 * * 1-5", "timezone": "Europe/Paris", "enabled": False}}}, format="json")

    # then
    assert response.status_code == 200, response.content
    task = PeriodicTask.objects.get(pk=task.pk)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "1-5")
    assert str(task.crontab.timezone) == "Europe/Paris" and task.enabled is False
    schedule = ops.get(f"/api/v1/channels/{channel_id}/catalog-refresh/").json()["schedule"]
    assert schedule["crontab"] == "30 2 * 1-5"[:0] + "30 2 * * 1-5" and schedule["enabled"] is False


def test_the_scheduled_task_starts_a_refresh_once(channel):
    refresh_id = catalog_refresh_from_schedule(channel_id=channel.pk)

    refresh = CatalogRefresh.objects.get(pk=refresh_id)
    assert refresh.trigger == "schedule" and refresh.requested_by == "schedule" and refresh.total == 1234
    assert catalog_refresh_from_schedule(channel_id=channel.pk) is None  # one active at a time
    assert catalog_refresh_from_schedule(channel_id=999_999) is None


def test_the_admin_pages_and_actions(admin_client, channel):
    # the channel actions: refresh now, schedule
    response = admin_client.post("/admin/channels/channel/", {
        "action": "catalog_refresh_now", "_selected_action": [channel.pk]}, follow=True)
    assert response.status_code == 200 and CatalogRefresh.objects.filter(channel=channel).count() == 1
    admin_client.post("/admin/channels/channel/", {"action": "catalog_refresh_schedule", "_selected_action": [channel.pk]})
    assert PeriodicTask.objects.filter(name=f"catalog-refresh:{channel.pk}").exists()
    refresh = CatalogRefresh.objects.get()

    listing = admin_client.get("/admin/channels/catalogrefresh/")
    page = admin_client.get(f"/admin/channels/catalogrefresh/{refresh.pk}/change/")

    assert listing.status_code == 200 and b"0 / 1234" in listing.content
    assert page.status_code == 200 and b"all 3 chunk(s)" in page.content
    admin_client.post("/admin/channels/catalogrefresh/", {"action": "cancel", "_selected_action": [refresh.pk]})
    assert CatalogRefresh.objects.get().status == "cancelled"


def test_no_chunk_starts_while_the_channels_bucket_is_under_the_refresh_floor(ops):
    # given: a refresh of a channel whose rate-limit bucket price and stock just emptied
    from channels.context import RedisChannelContext
    from channels.redis_client import get_redis
    from channels.services.catalog_refresh import catalog_refresh_step

    _catalog(50)
    channel = ChannelFactory(name="hook", kind="webhook", settings={"rate_per_s": 1, "burst": 10})
    for key in get_redis().scan_iter(f"syncsvc:bucket:{channel.pk}:*"):
        get_redis().delete(key)
    refresh = CatalogRefresh.objects.get(pk=_start(ops, channel).json()["refresh"])
    assert RedisChannelContext(channel.pk, {"default": (1.0, 10.0)}).acquire(10) == 0.0

    # when: a step runs
    outcome = catalog_refresh_step(refresh_id=refresh.pk)

    # then: it starts nothing and comes back when the bucket holds half its capacity again
    assert not CatalogRefreshChunk.objects.filter(refresh=refresh).exclude(status="pending").exists()
    assert CatalogRefreshChunk.objects.get(refresh=refresh).starts == 0
    assert outcome.requeue_in is not None and 3.0 < outcome.requeue_in <= 5.0
    refresh.refresh_from_db()
    assert refresh.status == "running" and refresh.lease_until is None  # released for the next step


def test_a_shadow_channel_is_refreshed_without_any_call(ops, channel):
    # given: the Amazon channel in shadow mode, pointing nowhere (a call would fail the chunks)
    from channels.redis_client import get_redis
    from channels.services.catalog_refresh import catalog_refresh_step

    Channel.objects.filter(pk=channel.pk).update(mode="shadow", base_url="http://127.0.0.1:9/nowhere")
    for key in get_redis().scan_iter(f"syncsvc:bucket:{channel.pk}:*"):
        get_redis().delete(key)
    refresh = CatalogRefresh.objects.get(pk=_start(ops, channel).json()["refresh"])

    # when: its steps run
    for _ in range(10):
        if catalog_refresh_step(refresh_id=refresh.pk).requeue_in is None:
            break

    # then
    refresh.refresh_from_db()
    assert refresh.status == "done" and refresh.done == 1234 and refresh.failed == 0
    assert all(chunk.remote == {} and chunk.error == "" for chunk in CatalogRefreshChunk.objects.filter(refresh=refresh))
