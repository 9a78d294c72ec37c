"""Pending marks: coalescing, leased claims, compare-and-settle, backoff."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels.marks import marks_claim, marks_clear, marks_give_up, marks_retry_later
from channels.models import SyncMark
from inventory import services
from inventory.models import Variant
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


def _set_price(sku, price):
    services.variant_update(variant=Variant.objects.get(sku=sku), fields={"price": Decimal(price)})


def test_ten_edits_before_a_flush_are_one_mark_at_the_latest_version():
    # given
    channel = ChannelFactory()
    product_with_variants(skus=["M-1"])
    first = SyncMark.objects.get(channel=channel, variant__sku="M-1", aspect="price")

    # when
    for n in range(10):
        _set_price("M-1", f"{11 + n}.00")

    # then
    mark = SyncMark.objects.get(channel=channel, variant__sku="M-1", aspect="price")
    assert mark.version > first.version
    assert mark.first_committed_at == first.first_committed_at  # latency counts from the oldest
    assert SyncMark.objects.filter(channel=channel, variant__sku="M-1", aspect="price").count() == 1


def test_every_channel_gets_a_mark_per_aspect_even_when_disabled():
    live_channel, paused = ChannelFactory(), ChannelFactory(enabled=False)
    product_with_variants(skus=["M-2"])
    for channel in (live_channel, paused):
        assert set(SyncMark.objects.filter(channel=channel).values_list("aspect", flat=True)) == {"price", "inventory", "content"}


def test_concurrent_claims_are_disjoint_and_a_lease_blocks_reclaiming():
    channel = ChannelFactory()
    product_with_variants(skus=[f"D-{n}" for n in range(5)])
    first = marks_claim(channel_id=channel.pk, claimer="a", limit=8, lease_s=60)
    second = marks_claim(channel_id=channel.pk, claimer="b", limit=100, lease_s=60)
    assert len(first) == 8 and len(second) == 7
    assert not {m.id for m in first} & {m.id for m in second}
    assert marks_claim(channel_id=channel.pk, claimer="c", limit=100, lease_s=60) == []


def test_an_expired_lease_makes_the_mark_due_again():
    channel = ChannelFactory()
    product_with_variants(skus=["E-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="dead", limit=10, lease_s=60)
    SyncMark.objects.filter(pk__in=[m.id for m in claimed]).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert len(marks_claim(channel_id=channel.pk, claimer="next", limit=10, lease_s=60)) == len(claimed)


def test_a_change_landing_mid_flight_keeps_the_mark_pending():
    # given
    channel = ChannelFactory()
    product_with_variants(skus=["F-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)

    # when: the price changes while the flush is sending the old one
    _set_price("F-1", "99.00")
    settled = marks_clear(mark_ids=[m.id for m in claimed], claimer="me")

    # then: the other aspects settle, the price stays owed
    assert settled == len(claimed) - 1
    pending = SyncMark.objects.pending().get(channel=channel)
    assert pending.aspect == "price" and pending.claimed_by is None


def test_a_mark_in_backoff_keeps_its_due_time_when_new_changes_land():
    channel = ChannelFactory()
    product_with_variants(skus=["B-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    marks_retry_later(mark_ids=[m.id for m in claimed], claimer="me", delay_s=30, error="http_503")
    due_before = SyncMark.objects.get(channel=channel, aspect="price").due_at

    _set_price("B-1", "12.00")

    mark = SyncMark.objects.get(channel=channel, aspect="price")
    assert mark.due_at == due_before and mark.attempts == 1


def test_a_new_change_revives_a_mark_that_gave_up():
    channel = ChannelFactory()
    product_with_variants(skus=["G-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    marks_give_up(mark_ids=[m.id for m in claimed], claimer="me", error="http_400")
    assert marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60) == []

    _set_price("G-1", "12.00")

    revived = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    assert [m.aspect for m in revived] == ["price"]


def test_a_sku_changed_right_after_a_send_waits_out_the_hot_window(settings):
    # given: its last state was delivered a moment ago
    settings.SYNCSVC["HOT_COALESCE_S"] = 0.25
    channel = ChannelFactory()
    product_with_variants(skus=["H-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    marks_clear(mark_ids=[m.id for m in claimed], claimer="me")

    # when
    _set_price("H-1", "12.00")

    # then: not due yet
    mark = SyncMark.objects.pending().get(channel=channel)
    assert mark.due_at > timezone.now()
    assert marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60) == []


@pytest.mark.parametrize("stock, due_at_once", [(100, False), (6, False), (5, True), (1, True)])
def test_a_stock_change_to_low_stock_skips_the_hot_window(settings, stock, due_at_once):
    # given: stock just delivered; the low-stock level is 5 sellable units
    settings.SYNCSVC.update(HOT_COALESCE_S=5.0, LOW_STOCK_UNITS=5)
    channel = ChannelFactory()
    product_with_variants(skus=["L-1"], stock=stock + 1)
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    marks_clear(mark_ids=[m.id for m in claimed], claimer="me")

    # when: one unit sells, right after the send
    services.stock_adjust(sku="L-1", delta=-1, reason="sale", reference="sale-1")

    # then: at or under the level it is due now; above it, it waits out the window
    due = [m.aspect for m in marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)]
    assert due == (["inventory"] if due_at_once else [])


def test_a_sku_quiet_for_longer_than_the_window_is_due_at_once(settings):
    settings.SYNCSVC["HOT_COALESCE_S"] = 0.25
    channel = ChannelFactory()
    product_with_variants(skus=["Q-1"])
    claimed = marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)
    marks_clear(mark_ids=[m.id for m in claimed], claimer="me")
    SyncMark.objects.update(delivered_at=timezone.now() - timedelta(seconds=5))

    _set_price("Q-1", "12.00")

    assert [m.aspect for m in marks_claim(channel_id=channel.pk, claimer="me", limit=10, lease_s=60)] == ["price"]


def test_a_rolled_back_change_leaves_no_mark():
    from django.db import transaction

    channel = ChannelFactory()
    product_with_variants(skus=["R-1"])
    SyncMark.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():
        _set_price("R-1", "50.00")
        raise RuntimeError
    assert not SyncMark.objects.filter(channel=channel).exists()


def test_the_wakeup_is_sent_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    ChannelFactory()
    product_with_variants(skus=["W-1"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _set_price("W-1", "50.00")
    assert len(callbacks) == 1  # deferred to commit, not sent inside the transaction
