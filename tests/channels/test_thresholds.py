"""Threshold rules end to end: API -> marks -> real worker and beat -> webhook sandbox store.

Small stock changes are held and go out in a threshold batch (beat's `channels.held_release`),
low stock goes at once, a hot price reaches the channel at most once per minimum interval and
ends at its last value, an urgent change skips every rule, a price moved by less than the
epsilon is ignored; the admin and the API refuse bad values naming the field.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.utils import timezone

from channels.marks import marks_claim, marks_clear, marks_hold, marks_ignore
from channels.models import SyncAttempt, SyncMark, ThresholdRule
from channels.services.thresholds import batch_at
from inventory import services
from inventory.models import Change, StockMovement, Variant
from tests.factories import ChannelFactory, product_with_variants, webhook_channel
from tests.support.sandbox import wait_until


def _shown(stack, store, sku, field):
    item = stack.sandbox.item("webhook", store, sku)
    return item and item[field]


def _settled(stack, store, sku, *, price=None, available=None) -> int:
    """Wait until the store shows these values and nothing is owed for the SKU; its write count."""
    if price is not None:
        wait_until(lambda: _shown(stack, store, sku, "price") == price, message=f"{sku} never showed {price}")
    if available is not None:
        wait_until(lambda: _shown(stack, store, sku, "available") == available, message=f"{sku} never showed {available}")
    wait_until(lambda: not SyncMark.objects.pending().filter(variant__sku=sku).exists(), message=f"{sku} never settled")
    return stack.sandbox.item("webhook", store, sku)["writes"]


def _status(ops, name: str) -> dict:
    return {row["name"]: row for row in ops.get("/api/v1/status/").json()["channels"]}[name]


def _held(sku: str, reason: str) -> bool:
    return SyncMark.objects.pending().filter(variant__sku=sku, held_reason=reason).exists()


def _sale(pim, sku: str, reference: str, delta: int = -1, **extra):
    body = {"sku": sku, "delta": delta, "reason": "sale", "reference": reference, **extra}
    response = pim.post("/api/v1/inventory/adjustments/", body, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.stack
def test_single_unit_stock_changes_under_the_threshold_are_held_then_flushed_by_the_beat_job(live, store_name, pim, ops):
    # given: a channel that holds stock changes of fewer than 5 units, in hourly batches
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["CC-1"], stock=50)
    writes = _settled(live, store_name, "CC-1", available=50)
    rule = ThresholdRule.objects.create(channel=channel, aspect="inventory", min_units=5, batch_every_s=3600)

    # when: three single-unit cycle-count corrections
    for n in range(3):
        _sale(pim, "CC-1", f"count-{n}")

    # then: held, the store untouched, the status API says so
    wait_until(lambda: _held("CC-1", "min_units"), message="the stock change was never held")
    item = live.sandbox.item("webhook", store_name, "CC-1")
    assert item["available"] == 50 and item["writes"] == writes
    status = _status(ops, channel.name)
    assert status["held"]["count"] == 1 and status["held"]["oldest_held_age_s"] >= 0

    # when: the operator shortens the batch (as in the admin); beat's release job takes it from there
    rule.batch_every_s = 1
    rule.save()

    # then: the store ends at the final value, in one write, and nothing is held any more
    wait_until(lambda: _shown(live, store_name, "CC-1", "available") == 47, message="the held change never went out")
    assert _settled(live, store_name, "CC-1", available=47) == writes + 1
    status = _status(ops, channel.name)
    assert status["held"] == {"count": 0, "oldest_held_age_s": None}


@pytest.mark.stack
def test_a_change_to_the_low_stock_level_goes_at_once(live, store_name, pim, settings):
    # given: a channel that holds any stock change under 100 units for an hour
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["LOW-1"], stock=50)
    _settled(live, store_name, "LOW-1", available=50)
    ThresholdRule.objects.create(channel=channel, aspect="inventory", min_units=100, batch_every_s=3600)
    level = settings.SYNCSVC["LOW_STOCK_UNITS"]

    # when: stock falls to the low-stock level
    _sale(pim, "LOW-1", "big-sale", delta=-(50 - level))

    # then: the channel gets it now, not in the batch
    wait_until(lambda: _shown(live, store_name, "LOW-1", "available") == level, timeout=5,
               message="the low-stock figure was held")
    assert not _held("LOW-1", "min_units")


@pytest.mark.stack
def test_a_price_changed_every_100ms_reaches_the_channel_at_most_once_per_interval(live, store_name, pim):
    # given: at most one price delivery per SKU every 2 seconds
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["REPRICE-1"], price="10.00")
    writes = _settled(live, store_name, "REPRICE-1", price="10.00")
    ThresholdRule.objects.create(channel=channel, aspect="price", min_interval_s=2)

    # when: a repricing tool changes the price every 100 ms for about 3 seconds
    started = time.monotonic()
    for cents in range(1001, 1031):
        assert pim.patch("/api/v1/variants/REPRICE-1/", {"price": f"{cents / 100:.2f}"}, format="json").status_code == 200
        time.sleep(0.1)  # the producer's pace, not a wait for a condition

    # then: the last value arrives, in at most one write per interval of the burst and its tail
    final = _settled(live, store_name, "REPRICE-1", price="10.30")
    elapsed = time.monotonic() - started
    assert 1 <= final - writes <= elapsed // 2 + 1, f"{final - writes} writes in {elapsed:.1f} s"


@pytest.mark.stack
def test_an_urgent_change_bypasses_the_interval(live, store_name, pim, ops):
    # given: at most one price delivery per SKU per hour; the price was just delivered
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["URG-1"], price="10.00")
    _settled(live, store_name, "URG-1", price="10.00")
    ThresholdRule.objects.create(channel=channel, aspect="price", min_interval_s=3600)

    # when: a normal change, then a correction the PIM marks urgent
    assert pim.patch("/api/v1/variants/URG-1/", {"price": "11.00"}, format="json").status_code == 200
    wait_until(lambda: _held("URG-1", "min_interval"), message="the normal change was not held by the interval")
    assert _shown(live, store_name, "URG-1", "price") == "10.00"
    change = Change.objects.filter(variant__sku="URG-1", aspect="price").latest("pk")
    trace = ops.get(f"/api/v1/changes/{change.pk}/trace/").json()
    assert [row["mark"]["held_reason"] for row in trace["channels"]] == ["min_interval"], trace
    response = pim.patch("/api/v1/variants/URG-1/", {"price": "12.00", "urgent": True}, format="json")

    # then: the urgent one arrives at once
    assert response.status_code == 200, response.content
    wait_until(lambda: _shown(live, store_name, "URG-1", "price") == "12.00", timeout=5,
               message="the urgent change waited for the interval")


@pytest.mark.stack
def test_urgent_rows_of_the_bulk_price_and_adjustment_apis_bypass_the_rules(live, store_name, pim):
    # given: hourly intervals for price and stock, and stock changes under 100 units held
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["BU-1", "BU-2"], price="10.00", stock=50)
    for sku in ("BU-1", "BU-2"):
        _settled(live, store_name, sku, price="10.00", available=50)
    ThresholdRule.objects.create(channel=channel, aspect="price", min_interval_s=3600)
    ThresholdRule.objects.create(channel=channel, aspect="inventory", min_units=100, min_interval_s=3600)

    # when
    response = pim.post("/api/v1/prices/bulk/", [
        {"sku": "BU-1", "price": "15.00", "urgent": True}, {"sku": "BU-2", "price": "16.00"},
    ], format="json")
    assert response.status_code == 200, response.content
    _sale(pim, "BU-1", "urgent-sale", urgent=True)
    _sale(pim, "BU-2", "normal-sale")

    # then: the urgent ones arrive; the others are held
    wait_until(lambda: _shown(live, store_name, "BU-1", "price") == "15.00", message="urgent bulk price held")
    wait_until(lambda: _shown(live, store_name, "BU-1", "available") == 49, message="urgent adjustment held")
    wait_until(lambda: _held("BU-2", "min_interval"), message="the normal changes were not held")
    item = live.sandbox.item("webhook", store_name, "BU-2")
    assert item["price"] == "10.00" and item["available"] == 50


@pytest.mark.stack
def test_a_price_change_under_the_epsilon_is_ignored(live, store_name, pim):
    # given: price changes under 0.50 from the last price sent are not worth a call
    channel = webhook_channel(live, store_name)
    product_with_variants(skus=["EPS-1"], price="10.00")
    writes = _settled(live, store_name, "EPS-1", price="10.00")
    ThresholdRule.objects.create(channel=channel, aspect="price", price_epsilon=Decimal("0.50"))

    # when: two small moves (0.20, then 0.40 from what the channel has)
    for price in ("10.20", "10.40"):
        assert pim.patch("/api/v1/variants/EPS-1/", {"price": price}, format="json").status_code == 200
        _settled(live, store_name, "EPS-1")

    # then: ignored, and said so in the sync log; the store untouched
    assert live.sandbox.item("webhook", store_name, "EPS-1")["writes"] == writes
    ignored = SyncAttempt.objects.filter(sku="EPS-1", status="ignored", error_code="below_price_epsilon")
    assert ignored.count() == 2

    # when: the price moves 0.60 from what the channel was sent
    assert pim.patch("/api/v1/variants/EPS-1/", {"price": "10.60"}, format="json").status_code == 200

    # then: it is sent
    assert _settled(live, store_name, "EPS-1", price="10.60") == writes + 1


# --- validation ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field, value, aspect", [
    ("min_units", "-1", "inventory"),
    ("price_epsilon", "-0.01", "price"),
    ("min_interval_s", "-5", "price"),
    ("batch_every_s", "0", "inventory"),
    ("min_interval_s", "7200", "price"),
    ("min_units", "3", "price"),
    ("price_epsilon", "0.10", "inventory"),
])
def test_the_admin_refuses_a_bad_rule_naming_the_field(admin_client, field, value, aspect):
    # given
    channel = ChannelFactory()
    form = {"channel": channel.pk, "aspect": aspect, "min_units": "0", "price_epsilon": "0", "min_interval_s": "0",
            "batch_every_s": "300", field: value}

    # when
    response = admin_client.post("/admin/channels/thresholdrule/add/", form)

    # then
    assert response.status_code == 200  # the form again, with its errors
    assert field in response.context["adminform"].form.errors
    assert not ThresholdRule.objects.exists()


@pytest.mark.django_db
def test_the_channel_admin_edits_its_rules_inline(admin_client):
    # given
    channel = ChannelFactory()

    # when
    response = admin_client.get(f"/admin/channels/channel/{channel.pk}/change/")

    # then
    assert response.status_code == 200
    assert b"threshold_rules-TOTAL_FORMS" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/variants/VAL-1/", {"price": "1.00", "urgent": "yes"}, "urgent"),
    ("/api/v1/prices/bulk/", [{"sku": "VAL-1", "price": "1.00", "urgent": 1}], "[0].urgent"),
    ("/api/v1/inventory/adjustments/", {"sku": "VAL-1", "delta": 1, "reason": "receipt", "reference": "r",
                                        "urgent": "true"}, "urgent"),
])
def test_an_urgent_flag_of_the_wrong_type_is_a_400_naming_it(pim, path, body, field):
    # given
    product_with_variants(skus=["VAL-1"], price="10.00")

    # when
    method = pim.patch if path.startswith("/api/v1/variants/") else pim.post
    response = method(path, body, format="json")

    # then: refused, nothing written
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert Variant.objects.get(sku="VAL-1").price == Decimal("10.00")
    assert not StockMovement.objects.filter(reference="r").exists()


# --- the marks' held and urgent state (no stack) ----------------------------------------------


def _claim(channel, aspect):
    return next(m for m in marks_claim(channel_id=channel.pk, claimer="t", limit=100, lease_s=60) if m.aspect == aspect)


@pytest.mark.django_db
def test_a_held_mark_is_weighed_again_when_a_new_change_lands_and_keeps_its_hold_time():

    # given: a stock mark held for the next batch
    channel = ChannelFactory()
    product_with_variants(skus=["HM-1"], stock=50)
    mark = _claim(channel, "inventory")
    due = batch_at(timezone.now(), 3600)
    marks_hold(mark_ids=[mark.id], claimer="t", reason="min_units", due_at=due)
    held = SyncMark.objects.get(pk=mark.id)
    assert (held.due_at, held.held_reason, held.claimed_by) == (due, "min_units", None)

    # when: another change of the SKU
    services.stock_adjust(sku="HM-1", delta=-1, reason="sale", reference="hm-sale")

    # then: due now (the flush weighs the new figure), still held since the first hold
    again = SyncMark.objects.get(pk=mark.id)
    assert again.due_at <= timezone.now() and again.held_since == held.held_since
    claimed = _claim(channel, "inventory")
    assert claimed.held_reason == "min_units" and claimed.held_since == held.held_since and not claimed.urgent


@pytest.mark.django_db
def test_an_urgent_change_pulls_in_a_mark_held_by_the_interval_and_is_remembered_until_delivered():
    # given: a price mark held for an hour by the minimum interval
    channel = ChannelFactory()
    product_with_variants(skus=["UM-1"], price="10.00")
    mark = _claim(channel, "price")
    marks_hold(mark_ids=[mark.id], claimer="t", reason="min_interval", due_at=timezone.now() + timedelta(hours=1))

    # when
    services.variant_update(variant=Variant.objects.get(sku="UM-1"), fields={"price": Decimal("9.00")}, urgent=True)

    # then: due now and urgent; delivered, the urgency and the hold are gone
    claimed = _claim(channel, "price")
    assert claimed.urgent and claimed.held_reason == "min_interval"
    marks_clear(mark_ids=[claimed.id], claimer="t")
    settled = SyncMark.objects.get(pk=mark.id)
    assert (settled.due_at, settled.urgent_version, settled.held_since, settled.held_reason) == (None, None, None, None)


@pytest.mark.django_db
def test_an_ignored_mark_settles_without_counting_as_a_delivery():
    # given: a price delivered once, then a small change claimed
    channel = ChannelFactory()
    product_with_variants(skus=["IM-1"], price="10.00")
    marks_clear(mark_ids=[_claim(channel, "price").id], claimer="t")
    delivered_at = SyncMark.objects.get(channel=channel, aspect="price").delivered_at
    services.variant_update(variant=Variant.objects.get(sku="IM-1"), fields={"price": Decimal("10.01")})
    SyncMark.objects.filter(channel=channel, aspect="price").update(due_at=timezone.now())
    mark = _claim(channel, "price")

    # when
    marks_ignore(mark_ids=[mark.id], claimer="t")

    # then
    settled = SyncMark.objects.get(pk=mark.id)
    assert settled.due_at is None and settled.delivered_at == delivered_at


def timezone_now():
    return timezone.now()


def test_threshold_batches_fall_on_multiples_of_the_period():

    held = datetime(2026, 1, 1, 12, 4, 59, tzinfo=dt_timezone.utc)
    assert batch_at(held, 300) == datetime(2026, 1, 1, 12, 5, 0, tzinfo=dt_timezone.utc)
    assert batch_at(held.replace(minute=5, second=0), 300) == datetime(2026, 1, 1, 12, 10, 0, tzinfo=dt_timezone.utc)


@pytest.mark.django_db
def test_a_change_held_by_a_rule_does_not_make_an_idle_channel_dead_until_its_hold_ends():
    from channels.models import Alert, ChannelHealth
    from channels.services.alert_rules import alerts_evaluate

    # given: a stock change committed 5 minutes ago, held until the batch in 10 minutes
    channel = ChannelFactory()
    ChannelHealth.objects.create(channel=channel, expected_interval_s=60)
    product_with_variants(skus=["DEAD-1"])
    SyncMark.objects.filter(channel=channel).delete()
    now = timezone.now()
    since = now - timedelta(minutes=5)
    mark = SyncMark.objects.create(
        channel=channel, variant=Variant.objects.get(sku="DEAD-1"), aspect="inventory", version=1,
        first_committed_at=since, last_committed_at=since, due_at=now + timedelta(minutes=10), held_since=since,
        held_reason="min_units",
    )

    # when / then: held, not dead
    alerts_evaluate(now=now)
    assert not Alert.objects.filter(channel=channel, kind="dead_channel", cleared_at__isnull=True).exists()

    # when: its batch came long ago and it still is not delivered
    SyncMark.objects.filter(pk=mark.pk).update(due_at=now - timedelta(minutes=3))
    alerts_evaluate(now=now)

    # then
    assert Alert.objects.filter(channel=channel, kind="dead_channel", cleared_at__isnull=True).exists()
