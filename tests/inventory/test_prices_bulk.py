"""The bulk price service: one transaction, latest source time wins, marks for what moved."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

import pytest

from channels.models import SyncMark
from inventory import services
from inventory.errors import BulkRowsError
from inventory.models import Change, Variant
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db

EARLY = datetime(2030, 1, 1, tzinfo=dt_timezone.utc)
LATE = datetime(2030, 1, 2, tzinfo=dt_timezone.utc)


def _row(sku, price, changed_at=None):
    return services.PriceRow(sku=sku, price=Decimal(price), changed_at=changed_at)


def test_only_moved_prices_record_changes_and_owe_every_channel_one_mark():
    # given
    channels = [ChannelFactory(), ChannelFactory()]
    product_with_variants(skus=["K-1", "K-2", "K-3"], price="10.00")
    changes_before = Change.objects.filter(aspect="price").count()

    # when: K-2 keeps its price
    result = services.prices_bulk_set(rows=[_row("K-1", "11.00"), _row("K-2", "10.00"), _row("K-3", "13.50")])

    # then
    assert (result.applied, result.ignored, result.changed) == (3, 0, 2)
    assert dict(Variant.objects.values_list("sku", "price")) == {
        "K-1": Decimal("11.00"), "K-2": Decimal("10.00"), "K-3": Decimal("13.50")
    }
    new = Change.objects.filter(aspect="price").order_by("pk")[changes_before:]
    assert sorted(c.variant.sku for c in new) == ["K-1", "K-3"]
    for channel in channels:
        marks = SyncMark.objects.filter(channel=channel, aspect="price", variant__sku__in=["K-1", "K-3"])
        assert sorted(marks.values_list("version", flat=True)) == sorted(c.pk for c in new)


def test_the_same_sku_twice_takes_the_later_source_time_and_counts_the_other_ignored():
    product_with_variants(skus=["D-1"], price="10.00")
    result = services.prices_bulk_set(rows=[_row("D-1", "12.00", LATE), _row("D-1", "11.00", EARLY)])
    assert (result.applied, result.ignored) == (1, 1)
    assert Variant.objects.get(sku="D-1").price == Decimal("12.00")


def test_a_row_older_than_the_stored_price_is_ignored_and_records_nothing():
    product_with_variants(skus=["S-1", "S-2"], price="10.00")
    services.prices_bulk_set(rows=[_row("S-1", "20.00", LATE)])
    changes_before = Change.objects.count()

    result = services.prices_bulk_set(rows=[_row("S-1", "5.00", EARLY), _row("S-2", "7.00", EARLY)])

    assert (result.applied, result.ignored, result.changed) == (1, 1, 1)
    assert Variant.objects.get(sku="S-1").price == Decimal("20.00")
    assert Variant.objects.get(sku="S-1").price_changed_at == LATE
    assert Change.objects.count() == changes_before + 1


def test_unknown_skus_are_named_by_row_and_nothing_is_written():
    ChannelFactory()
    product_with_variants(skus=["U-1"], price="10.00")
    changes_before, marks_before = Change.objects.count(), SyncMark.objects.count()

    with pytest.raises(BulkRowsError) as refused:
        services.prices_bulk_set(rows=[_row("U-1", "2.00"), _row("NOPE", "3.00"), _row("U-1", "4.00"), _row("NOPE", "1")])

    assert sorted(refused.value.rows) == [1, 3]
    assert Variant.objects.get(sku="U-1").price == Decimal("10.00")
    assert (Change.objects.count(), SyncMark.objects.count()) == (changes_before, marks_before)


@pytest.mark.parametrize("sku", ['quote"d', "back\\slash", "com,ma", "{brace}", "sp ace", "NULL", "ünï"])
def test_skus_with_characters_special_to_sql_arrays_are_written(sku):
    product_with_variants(skus=[sku, "PLAIN-1"], price="10.00")
    result = services.prices_bulk_set(rows=[_row(sku, "3.25"), _row("PLAIN-1", "4.00")])
    assert result.changed == 2
    assert Variant.objects.get(sku=sku).price == Decimal("3.25")
