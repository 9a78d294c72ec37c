"""Stored inbound events are applied in batches: many events, one transaction, each order line
moved through the same forward-only state machine, each ledger movement once."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import Channel, InboundEvent, OrderLine
from channels.services.inbound import inbound_batch_process, inbound_drain, inbound_process_due
from inventory.models import Change, StockMovement
from inventory.selectors import stock_totals
from inventory.services.ledger import Movement, stock_movements_apply
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


def _shop(**settings) -> Channel:
    return ChannelFactory(kind="shopify", enabled=False, settings=settings,
                          credentials={"access_token": "x", "webhook_secret": "s"})


def _order(order_id: int, lines: list[tuple[int, str, int]], *, status: str = "pending", cancelled: bool = False,
           fulfilled: bool = False) -> dict:
    return {
        "id": order_id, "financial_status": status, "cancelled_at": "2026-11-27T10:05:00Z" if cancelled else None,
        "line_items": [{"id": line_id, "sku": sku, "quantity": qty, "fulfillment_status": "fulfilled" if fulfilled else None}
                       for line_id, sku, qty in lines],
    }


def _store(channel: Channel, topic: str, body: dict, *, key: str | None = None, age_s: float = 0) -> InboundEvent:
    return InboundEvent.objects.create(
        channel=channel, key=key or str(uuid.uuid4()), topic=topic,
        headers={"X-Shopify-Topic": topic, "X-Shopify-Event-Id": key or "k"}, body=json.dumps(body),
        received_at=timezone.now() - timedelta(seconds=age_s),
    )


def _refund(order_id: int, line_id: int, sku: str, quantity: int, refund_id: int = 77) -> dict:
    return {"id": refund_id, "order_id": order_id, "refund_line_items": [
        {"line_item_id": line_id, "quantity": quantity, "restock_type": "return", "line_item": {"sku": sku}}]}


def test_duplicate_events_of_one_order_in_one_batch_are_applied_once():
    # given: the same paid order three times (three event ids: the channel's retries), two lines
    product_with_variants(handle="b", skus=["B-1", "B-2"], stock=10)
    channel = _shop()
    paid = _order(1001, [(1, "B-1", 2), (2, "B-2", 1)], status="paid")
    for _ in range(3):
        _store(channel, "orders/paid", paid)

    # when
    outcome = inbound_batch_process(channel_id=channel.pk)

    # then
    assert (outcome.claimed, outcome.settled) == (3, 3)
    assert stock_totals(sku="B-1") == (8, 0) and stock_totals(sku="B-2") == (9, 0)
    assert StockMovement.objects.filter(reason="sale").count() == 2
    assert sorted(InboundEvent.objects.values_list("status", flat=True)) == ["applied"] * 3
    assert set(OrderLine.objects.values_list("state", flat=True)) == {"committed"}


def test_create_paid_and_cancel_of_one_order_in_one_batch_end_cancelled_with_the_units_back():
    # given: reserved until fulfilled; created, paid (still held), then cancelled, all waiting
    product_with_variants(handle="c", skus=["C-1"], stock=5)
    channel = _shop(commit_on="fulfilled")
    _store(channel, "orders/create", _order(2001, [(1, "C-1", 2)]))
    _store(channel, "orders/paid", _order(2001, [(1, "C-1", 2)], status="paid"))
    _store(channel, "orders/cancelled", _order(2001, [(1, "C-1", 2)], status="paid", cancelled=True))

    # when
    inbound_batch_process(channel_id=channel.pk)

    # then: reserved then released, never sold
    assert stock_totals(sku="C-1") == (5, 0)
    assert OrderLine.objects.get().state == OrderLine.State.CANCELLED
    assert sorted(StockMovement.objects.filter(source=f"channel:{channel.pk}").values_list("reason", flat=True)) == [
        "release", "reservation"]


def test_a_sold_then_cancelled_order_in_one_batch_is_restocked_once():
    product_with_variants(handle="s", skus=["S-1"], stock=5)
    channel = _shop()
    _store(channel, "orders/create", _order(2101, [(1, "S-1", 3)]))
    _store(channel, "orders/paid", _order(2101, [(1, "S-1", 3)], status="paid"))
    _store(channel, "orders/cancelled", _order(2101, [(1, "S-1", 3)], status="paid", cancelled=True))
    _store(channel, "orders/cancelled", _order(2101, [(1, "S-1", 3)], status="paid", cancelled=True))

    inbound_batch_process(channel_id=channel.pk)

    assert stock_totals(sku="S-1") == (5, 0)
    line = OrderLine.objects.get()
    assert (line.state, line.restocked) == (OrderLine.State.CANCELLED, 3)
    assert StockMovement.objects.filter(reason="return").count() == 1


def test_an_unknown_sku_in_a_batch_is_flagged_and_does_not_block_the_other_events():
    # given
    product_with_variants(handle="u", skus=["U-1"], stock=5)
    channel = _shop()
    good = _store(channel, "orders/paid", _order(3001, [(1, "U-1", 1)], status="paid"))
    ghost = _store(channel, "orders/paid", _order(3002, [(1, "GHOST-9", 1), (2, "U-1", 1)], status="paid"))
    custom = _store(channel, "orders/paid", _order(3003, [(1, "", 1)], status="paid"))  # a custom line: no SKU

    # when
    inbound_batch_process(channel_id=channel.pk)

    # then
    good.refresh_from_db(), ghost.refresh_from_db(), custom.refresh_from_db()
    assert good.status == "applied" and custom.status == "applied"
    assert ghost.status == "needs_attention" and "GHOST-9" in ghost.detail
    assert OrderLine.objects.get(sku="GHOST-9").state == OrderLine.State.UNKNOWN_SKU
    assert stock_totals(sku="U-1") == (3, 0)
    assert not OrderLine.objects.filter(order_id="3003").exists()


def test_a_refund_before_its_order_stays_received_and_is_applied_after_the_order():
    # given: the refund arrives first
    product_with_variants(handle="r", skus=["R-1"], stock=5)
    channel = _shop()
    refund = _store(channel, "refunds/create", _refund(4001, 1, "R-1", 1))

    # when: a drain takes it: it cannot be applied yet
    inbound_drain(channel_id=channel.pk)

    # then: it waits, with its reason; a drain does not take it again (only the sweep does)
    refund.refresh_from_db()
    assert refund.status == "received" and "not recorded as sold" in refund.detail and refund.processed_at is None
    assert inbound_batch_process(channel_id=channel.pk, fresh_only=True).claimed == 0

    # when: the order comes and is applied, then the sweep retries the refund
    _store(channel, "orders/paid", _order(4001, [(1, "R-1", 2)], status="paid"))
    inbound_drain(channel_id=channel.pk)
    assert stock_totals(sku="R-1") == (3, 0)
    inbound_process_due(older_than_s=-1)

    # then
    refund.refresh_from_db()
    assert refund.status == "applied"
    assert stock_totals(sku="R-1") == (4, 0)
    assert StockMovement.objects.filter(reason="return").count() == 1


def test_a_refund_and_its_order_in_one_batch_apply_in_event_order_and_twice_is_once():
    product_with_variants(handle="o", skus=["O-1"], stock=5)
    channel = _shop()
    _store(channel, "orders/paid", _order(5001, [(1, "O-1", 2)], status="paid"))
    _store(channel, "refunds/create", _refund(5001, 1, "O-1", 1))
    _store(channel, "refunds/create", _refund(5001, 1, "O-1", 1))  # the same refund as another event
    _store(channel, "refunds/create", _refund(5001, 1, "O-1", 5, refund_id=78))  # more than the rest sold

    inbound_batch_process(channel_id=channel.pk)

    assert stock_totals(sku="O-1") == (5, 0)
    assert OrderLine.objects.get().restocked == 2
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"applied"}


def test_a_refund_waiting_too_long_needs_attention():
    channel = _shop()
    refund = _store(channel, "refunds/create", _refund(6001, 1, "X-1", 1), age_s=2 * 3600)

    inbound_process_due()

    refund.refresh_from_db()
    assert refund.status == "needs_attention" and refund.detail.startswith("gave up waiting")


def test_a_batch_applied_again_changes_nothing():
    product_with_variants(handle="a", skus=["A-1"], stock=5)
    channel = _shop()
    _store(channel, "orders/paid", _order(7001, [(1, "A-1", 1)], status="paid"))
    inbound_batch_process(channel_id=channel.pk)

    # a new delivery of the same order under another event id, in a later batch
    _store(channel, "orders/paid", _order(7001, [(1, "A-1", 1)], status="paid"))
    inbound_batch_process(channel_id=channel.pk)

    assert stock_totals(sku="A-1") == (4, 0)
    assert StockMovement.objects.filter(reason="sale").count() == 1
    assert InboundEvent.objects.order_by("pk").last().detail == "nothing to change (already applied)"


def test_bulk_movements_skip_applied_references_and_record_one_change_per_variant():
    # given
    product_with_variants(handle="m", skus=["M-1", "M-2"], stock=10)
    from inventory.models import Variant

    ids = dict(Variant.objects.values_list("sku", "pk"))
    before = Change.objects.count()

    # when: two sales of M-1, one of M-2, a reservation at a new location, and a repeat
    applied = stock_movements_apply(movements=[
        Movement(variant_id=ids["M-1"], delta=-1, reason="sale", reference="o:1", source="t"),
        Movement(variant_id=ids["M-2"], delta=-2, reason="sale", reference="o:2", source="t"),
        Movement(variant_id=ids["M-1"], delta=-3, reason="sale", reference="o:3", source="t"),
        Movement(variant_id=ids["M-1"], delta=-3, reason="sale", reference="o:3", source="t"),
        Movement(variant_id=ids["M-2"], delta=4, reason="reservation", reference="o:4", source="t", location="eu"),
    ])
    again = stock_movements_apply(movements=[
        Movement(variant_id=ids["M-1"], delta=-1, reason="sale", reference="o:1", source="t")])

    # then
    assert applied == [True, True, True, False, True] and again == [False]
    assert stock_totals(sku="M-1") == (6, 0) and stock_totals(sku="M-2") == (8, 4)
    assert list(StockMovement.objects.filter(source="t").order_by("pk").values_list("on_hand_after", "reserved_after")) == [
        (9, 0), (8, 0), (6, 0), (0, 4)]
    assert Change.objects.count() - before == 2


def test_bulk_movements_refuse_a_release_below_zero_and_write_nothing():
    from inventory.errors import InventoryError
    from inventory.models import Variant

    product_with_variants(handle="z", skus=["Z-1"], stock=10)
    variant_id = Variant.objects.get(sku="Z-1").pk

    with pytest.raises(InventoryError):
        stock_movements_apply(movements=[
            Movement(variant_id=variant_id, delta=-1, reason="sale", reference="z:1", source="t"),
            Movement(variant_id=variant_id, delta=-1, reason="release", reference="z:2", source="t"),
        ])

    assert stock_totals(sku="Z-1") == (10, 0)
    assert not StockMovement.objects.filter(source="t").exists()


def test_an_event_older_than_the_lines_last_news_is_noted_as_stale_and_moves_nothing_back():
    # given: the paid order (triggered at 10:05) was applied
    product_with_variants(handle="st", skus=["ST-1"], stock=5)
    channel = _shop()
    paid = _store(channel, "orders/paid", _order(3003, [(1, "ST-1", 1)], status="paid"), key="late-paid")
    created = _store(channel, "orders/create", _order(3003, [(1, "ST-1", 1)]), key="late-create")
    InboundEvent.objects.filter(pk=paid.pk).update(headers={"X-Shopify-Topic": "orders/paid", "X-Shopify-Event-Id": "p",
                                                            "X-Shopify-Triggered-At": "2026-11-27T10:05:00Z"})
    InboundEvent.objects.filter(pk=created.pk).update(received_at=timezone.now() + timedelta(seconds=1), headers={
        "X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": "c", "X-Shopify-Triggered-At": "2026-11-27T10:00:00Z"})
    inbound_batch_process(channel_id=channel.pk, limit=1)

    # when: the creation (triggered at 10:00) arrives after it
    inbound_batch_process(channel_id=channel.pk)

    # then
    created.refresh_from_db()
    assert "stale" in created.detail
    assert stock_totals(sku="ST-1") == (4, 0)


def _woo_order(order_id: int, status: str, lines: list[tuple[int, str, int]]) -> dict:
    return {"id": order_id, "status": status, "date_modified_gmt": "2026-11-27T10:00:00",
            "line_items": [{"id": line_id, "sku": sku, "quantity": qty} for line_id, sku, qty in lines],
            "refunds": [{"id": 90, "reason": "", "total": f"-{10 * lines[0][2]}.00"}] if status == "refunded" else []}


def test_a_woocommerce_refund_leaves_the_sale_standing_and_moves_no_stock():
    # given: a paid WooCommerce order, then fully refunded (the order does not say whether the
    # merchant restocked, and WooCommerce restocks only when asked)
    product_with_variants(handle="w", skus=["W-1"], stock=5)
    channel = ChannelFactory(kind="woocommerce", enabled=False,
                             credentials={"consumer_key": "ck", "consumer_secret": "cs", "webhook_secret": "s"})
    for status in ("processing", "refunded"):
        InboundEvent.objects.create(
            channel=channel, key=str(uuid.uuid4()), topic="order.updated",
            headers={"X-WC-Webhook-Topic": "order.updated"},
            body=json.dumps(_woo_order(3001, status, [(11, "W-1", 2)])), received_at=timezone.now(),
        )

    # when
    inbound_batch_process(channel_id=channel.pk)

    # then: sold once, nothing returned
    assert stock_totals(sku="W-1") == (3, 0)
    assert not StockMovement.objects.filter(reason="return").exists()
    assert list(OrderLine.objects.values_list("state", flat=True)) == ["committed"]


def test_a_woocommerce_refund_of_a_reserved_order_commits_it_as_the_store_counts_it():
    # given: held until fulfilled; WooCommerce took the stock at "processing" and a refund
    # without restock keeps it taken
    product_with_variants(handle="w2", skus=["W-2"], stock=5)
    channel = ChannelFactory(kind="woocommerce", enabled=False, settings={"commit_on": "fulfilled"},
                             credentials={"consumer_key": "ck", "consumer_secret": "cs", "webhook_secret": "s"})
    for status in ("processing", "refunded"):
        InboundEvent.objects.create(
            channel=channel, key=str(uuid.uuid4()), topic="order.updated",
            headers={"X-WC-Webhook-Topic": "order.updated"},
            body=json.dumps(_woo_order(3002, status, [(12, "W-2", 1)])), received_at=timezone.now(),
        )

    # when
    inbound_batch_process(channel_id=channel.pk)

    # then: no reservation left to expire and give the unit back
    assert stock_totals(sku="W-2") == (4, 0)


def test_a_shadow_channels_orders_are_kept_but_move_no_stock():
    # given: a shadow channel runs beside the integration that still counts its orders
    product_with_variants(handle="sh", skus=["SH-1"], stock=5)
    channel = _shop()
    Channel.objects.filter(pk=channel.pk).update(mode=Channel.Mode.SHADOW)
    event = _store(channel, "orders/paid", _order(4001, [(1, "SH-1", 2)], status="paid"))

    # when
    inbound_batch_process(channel_id=channel.pk)

    # then
    event.refresh_from_db()
    assert event.status == "ignored" and "shadow" in event.detail
    assert stock_totals(sku="SH-1") == (5, 0) and not OrderLine.objects.exists()
