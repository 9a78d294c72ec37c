"""Retention: the sync log, superseded change records and settled inbound events older than the
limit are deleted in batches; everything else stays."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import InboundEvent, SyncAttempt
from channels.services.retention import CHANGES_CURSOR_KEY, synclog_prune
from inventory import services
from inventory.models import Change, Variant
from tests.factories import ChannelFactory, product_with_variants
from tests.support.attempts import attempt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cursor():
    from channels.redis_client import get_redis

    get_redis().delete(CHANGES_CURSOR_KEY)


def test_rows_older_than_the_retention_are_deleted_in_batches_and_the_rest_stay(settings):
    # given: 23 rows past 30 days (every status, an unresolved failure among them), one exactly
    # at the limit and a few younger ones
    settings.SYNCSVC["SYNCLOG_RETENTION_DAYS"] = 30
    channel = ChannelFactory()
    now = timezone.now()
    limit = now - timedelta(days=30)
    statuses = ["success", "failure", "throttled", "ignored"]
    old = SyncAttempt.objects.bulk_create(
        attempt(channel, at=limit - timedelta(seconds=1 + i * 3600), sku=f"OLD-{i}", status=statuses[i % 4])
        for i in range(23)
    )
    kept = SyncAttempt.objects.bulk_create(
        [
            attempt(channel, at=limit, sku="AT-LIMIT"),
            attempt(channel, at=limit + timedelta(seconds=1), sku="JUST-INSIDE", status="failure"),
            attempt(channel, at=now - timedelta(minutes=5), sku="RECENT"),
        ]
    )

    # when
    outcome = synclog_prune(now=now, batch_size=5, budget_s=60)

    # then
    assert outcome.attempts == 23 and not outcome.more
    assert set(SyncAttempt.objects.values_list("pk", flat=True)) == {row.pk for row in kept}
    assert not SyncAttempt.objects.filter(pk__in=[row.pk for row in old]).exists()


def test_a_run_whose_budget_ends_leaves_the_rest_for_the_next_and_says_so(settings):
    settings.SYNCSVC["SYNCLOG_RETENTION_DAYS"] = 30
    channel = ChannelFactory()
    now = timezone.now()
    SyncAttempt.objects.bulk_create(
        attempt(channel, at=now - timedelta(days=31, minutes=i), sku=f"OLD-{i}") for i in range(12)
    )
    SyncAttempt.objects.bulk_create([attempt(channel, at=now, sku="NEW")])

    first = synclog_prune(now=now, batch_size=5, budget_s=0)  # one batch, then out of time
    assert (first.attempts, first.more) == (5, True)
    assert SyncAttempt.objects.count() == 8

    second = synclog_prune(now=now, batch_size=5, budget_s=60)
    assert (second.attempts, second.more) == (7, False)
    assert list(SyncAttempt.objects.values_list("sku", flat=True)) == ["NEW"]


def test_superseded_old_changes_are_pruned_but_the_latest_of_each_sku_and_aspect_stays(settings):
    # given: A has four old price changes and one old stock change; B an old and a new price change
    settings.SYNCSVC["SYNCLOG_RETENTION_DAYS"] = 30
    product_with_variants(skus=["A", "B"])
    a, b = (Variant.objects.get(sku=sku).pk for sku in ("A", "B"))
    Change.objects.all().delete()
    now = timezone.now()
    a_prices = [services.changes_record(variant_ids=[a], aspect="price", origin="t")[0].pk for _ in range(4)]
    a_stock = services.changes_record(variant_ids=[a], aspect="inventory", origin="t")[0].pk
    b_old = services.changes_record(variant_ids=[b], aspect="price", origin="t")[0].pk
    Change.objects.update(created_at=now - timedelta(days=40))
    b_new = services.changes_record(variant_ids=[b], aspect="price", origin="t")[0].pk

    # when: in batches of two
    outcome = synclog_prune(now=now, batch_size=2, budget_s=60)

    # then
    assert outcome.changes == 4 and not outcome.more
    assert set(Change.objects.values_list("pk", flat=True)) == {a_prices[-1], a_stock, b_new}
    assert b_old not in set(Change.objects.values_list("pk", flat=True))


def _event(channel, key: str, *, status: str, age_days: float, topic: str = "order.updated", now=None):
    now = now or timezone.now()
    at = now - timedelta(days=age_days)
    return InboundEvent.objects.create(channel=channel, key=key, topic=topic, body="{}", status=status,
                                       triggered_at=at, received_at=at).pk


def test_old_settled_inbound_events_go_and_waiting_ones_and_each_polls_cursor_stay(settings):
    # given: old events applied, ignored, waiting for a person and not applied yet; a recent
    # applied one; and two Magento channels' old polled orders (the newest of each is its poll's cursor)
    settings.SYNCSVC["SYNCLOG_RETENTION_DAYS"] = 30
    now = timezone.now()
    shop, mage, quiet = (ChannelFactory(kind=kind) for kind in ("woocommerce", "magento", "magento"))
    S = InboundEvent.Status
    gone = [_event(shop, "a", status=S.APPLIED, age_days=40), _event(shop, "i", status=S.IGNORED, age_days=31),
            _event(mage, "p1", status=S.APPLIED, age_days=50, topic="orders.polled"),
            _event(quiet, "q1", status=S.APPLIED, age_days=90, topic="orders.polled")]
    kept = [_event(shop, "n", status=S.NEEDS_ATTENTION, age_days=40), _event(shop, "r", status=S.RECEIVED, age_days=40),
            _event(shop, "new", status=S.APPLIED, age_days=1),
            _event(mage, "p2", status=S.APPLIED, age_days=45, topic="orders.polled"),
            _event(quiet, "q2", status=S.APPLIED, age_days=80, topic="orders.polled")]

    # when: in batches of two
    outcome = synclog_prune(now=now, batch_size=2, budget_s=60)

    # then
    assert outcome.inbound == len(gone) and not outcome.more
    assert set(InboundEvent.objects.values_list("pk", flat=True)) == set(kept)
