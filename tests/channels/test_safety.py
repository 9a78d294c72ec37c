"""What a channel is shown: on hand less reserved less its buffer, over its locations; the
buffer absolute, a percentage, bounded, or sized from measured latency and sell velocity."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import InboundEvent, SyncAttempt
from channels.safety import SafetyPolicy, _latency_cache, shown_quantities
from inventory import services
from inventory.models import StockMovement, Variant
from tests.factories import ChannelFactory, product_with_variants


@pytest.mark.parametrize("policy, sellable, shown", [
    (SafetyPolicy(), 10, 10),
    (SafetyPolicy(units=3), 10, 7),
    (SafetyPolicy(units=3), 2, 0),                  # never negative
    (SafetyPolicy(percent=10), 25, 22),             # 2.5 rounded up to 3
    (SafetyPolicy(percent=10, minimum=5), 25, 20),
    (SafetyPolicy(units=50, maximum=4), 25, 21),
    (SafetyPolicy(sized=True), 25, 25),
])
def test_buffer_rules(policy, sellable, shown):
    assert policy.shown(sellable) == shown


def test_sized_buffer_takes_over_only_when_larger():
    policy = SafetyPolicy(units=2, sized=True)

    assert policy.shown(20, sized_units=1) == 18
    assert policy.shown(20, sized_units=6) == 14


@pytest.mark.django_db
def test_channel_mapped_to_locations_is_shown_only_their_stock():
    # given: 5 in the warehouse, 3 in the shop
    product_with_variants(skus=["LOC-1"])
    services.stock_adjust(sku="LOC-1", delta=5, reason="receipt", reference="r1", location="warehouse")
    services.stock_adjust(sku="LOC-1", delta=3, reason="receipt", reference="r2", location="shop")
    everywhere = ChannelFactory()
    shop_only = ChannelFactory(settings={"locations": ["shop"]})
    variant = Variant.objects.get(sku="LOC-1")

    # when / then
    assert shown_quantities(everywhere, None, [variant.pk]) == {variant.pk: 8}
    assert shown_quantities(shop_only, None, [variant.pk]) == {variant.pk: 3}


@pytest.mark.django_db
def test_sized_buffer_is_p99_latency_times_the_other_channels_sell_velocity():
    # given: a channel whose inventory pushes take 2 s at p99, and a SKU the other channels
    # sold 30 units of over the last 290 s (~0.1 unit/s): expect ceil(2 * 0.103) = 1 unit held back
    product_with_variants(skus=["FAST-1"], stock=100)
    sized = ChannelFactory(settings={"safety_stock_sized": True})
    other = ChannelFactory()
    variant = Variant.objects.get(sku="FAST-1")
    now = timezone.now()
    SyncAttempt.objects.bulk_create([
        SyncAttempt(channel=sized, sku="FAST-1", event_type="inventory", status="success", version=1, committed_at=now,
                    started_at=now, latency_ms=2000.0 if i == 99 else 50.0, timestamp=now)
        for i in range(100)
    ])
    for n in range(3):  # spread over the window: 290 s, 190 s and 90 s ago
        services.stock_adjust(sku="FAST-1", delta=-10, reason="sale", reference=f"o{n}", source=f"channel:{other.pk}")
        StockMovement.objects.filter(reference=f"o{n}").update(created_at=now - timedelta(seconds=290 - 100 * n))
    services.stock_adjust(sku="FAST-1", delta=-10, reason="sale", reference="own", source=f"channel:{sized.pk}")
    _latency_cache.clear()

    # when
    shown = shown_quantities(sized, None, [variant.pk])

    # then: 60 sellable; its own sales do not size its buffer
    assert shown == {variant.pk: 60 - 1}
    assert shown_quantities(other, None, [variant.pk]) == {variant.pk: 60}


@pytest.mark.django_db
def test_a_flash_sale_sizes_the_buffer_from_its_own_rate_and_the_inbound_wait():
    # given: 12 units sold on another channel over the last 2 s (6/s), pushes at 200 ms p99,
    # inbound events applied 300 ms after they arrive: ceil((0.3 + 0.2) * 6) = 3 units
    product_with_variants(skus=["RUSH-1"], stock=100)
    sized = ChannelFactory(settings={"safety_stock_sized": True, "safety_stock_window_s": 60})
    other = ChannelFactory()
    variant = Variant.objects.get(sku="RUSH-1")
    now = timezone.now()
    SyncAttempt.objects.create(channel=sized, sku="RUSH-1", event_type="inventory", status="success", version=1,
                               committed_at=now, started_at=now, latency_ms=200.0, timestamp=now)
    InboundEvent.objects.create(channel=other, key="e", topic="orders/create", body="{}", status="applied",
                                received_at=now - timedelta(seconds=1.3), processed_at=now - timedelta(seconds=1))
    services.stock_adjust(sku="RUSH-1", delta=-12, reason="sale", reference="rush", source=f"channel:{other.pk}")
    StockMovement.objects.filter(reference="rush").update(created_at=now - timedelta(seconds=2))
    _latency_cache.clear()

    # when / then: 88 sellable, 3 held back
    assert shown_quantities(sized, None, [variant.pk]) == {variant.pk: 85}


@pytest.mark.django_db
def test_old_sales_do_not_size_the_buffer():
    product_with_variants(skus=["SLOW-1"], stock=10)
    sized = ChannelFactory(settings={"safety_stock_sized": True, "safety_stock_window_s": 60})
    services.stock_adjust(sku="SLOW-1", delta=-5, reason="sale", reference="old", source="channel:999999")
    from inventory.models import StockMovement

    StockMovement.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    variant = Variant.objects.get(sku="SLOW-1")

    assert shown_quantities(sized, None, [variant.pk]) == {variant.pk: 5}


@pytest.mark.django_db
@pytest.mark.parametrize("settings, field", [
    ({"safety_stock_percent": 150}, "settings.safety_stock_percent"),
    ({"safety_stock_min": 5, "safety_stock_max": 2}, "settings.safety_stock_max"),
    ({"safety_stock_sized": "yes"}, "settings.safety_stock_sized"),
    ({"locations": "shop"}, "settings.locations"),
])
def test_bad_safety_settings_are_refused_naming_the_setting(ops, settings, field):
    response = ops.post("/api/v1/channels/", {
        "name": "bad", "kind": "webhook", "base_url": "https://example.test/hook", "credentials": {"secret": "s"},
        "settings": settings,
    }, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
