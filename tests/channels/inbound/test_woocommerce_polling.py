"""WooCommerce never retries an order webhook it could not deliver: beat also polls its orders
(`GET /orders` by `date_modified_gmt`), so a sale whose delivery failed is booked by the next
poll, and a sale that came both ways counts once. Stack tests: the real sandbox store, a real
web server taking its webhooks, a real worker and beat, PostgreSQL and Redis."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from channels.adapters.base import ChannelThrottled
from channels.inbound import woocommerce
from channels.inbound.base import LineStatus, MalformedPayload
from channels.models import InboundEvent, OrderLine
from channels.sandbox.woocommerce.orders import delivery_headers, wp_json_encode
from channels.metrics.counters import CAUGHT_KEY
from channels.redis_client import get_redis
from channels.services.inbound import CAUGHT_NOTE, inbound_batch_process, inbound_store_polled
from channels.services.flush import adapter_for_channel
from channels.services.polling import orders_poll
from inventory.models import StockMovement
from inventory.selectors import stock_totals
from tests.factories import ChannelFactory, product_with_variants, sandbox_channel
from tests.support.reference import reference_file
from tests.support.sandbox import wait_until
from tests.support.stock import wait_stock_shown

KIND = "woocommerce"
SECRET = "whsec-test"  # what `sandbox_channel` gives the channel and its store
# Nothing listens here: every delivery fails, as while our database restarts (WooCommerce
# answers no retry: the order is only in the shop).
DEAD_RECEIVER = "http://127.0.0.1:9"


def _sample() -> dict:
    return json.loads(reference_file("samples/woocommerce-order-created.json").read_text())


def _sales(sku: str) -> int:
    return StockMovement.objects.filter(variant__sku=sku, reason="sale").count()


def _deliveries(live, store: str, order_id: int) -> list[str]:
    """How the store's deliveries of the order's sale went (`pending`, `failed`, `delivered`)."""
    answer = live.sandbox.session.get(f"{live.sandbox.base_url}/_sandbox/{KIND}/{store}/orders", timeout=10).json()
    return [d["status"] for sale in answer["orders"] if sale["order_id"] == order_id for d in sale["deliveries"]]


def _store(live, store_name: str, sku: str, available: int, **fields):
    channel = sandbox_channel(live, KIND, store_name, **fields)
    live.sandbox.put_item(KIND, store_name, sku, price="10.00", available=available, title=sku)
    product_with_variants(handle=sku.lower(), skus=[sku], stock=available)
    return channel


# --- the poll's reading of an order -----------------------------------------------------------


def test_a_polled_order_has_the_lines_of_its_webhook_under_its_own_topic():
    body = json.dumps(_sample()).encode()

    webhook = woocommerce.parse(headers={"X-WC-Webhook-Topic": "order.created"}, body=body)
    polled = woocommerce.parse_polled(body=body)

    assert polled.lines == webhook.lines and polled.order_id == webhook.order_id
    assert polled.topic == "order.polled" and polled.triggered_at == webhook.triggered_at
    assert polled.key.startswith(f"order.polled:{webhook.order_id}:{_sample()['date_modified_gmt']}:")


def test_the_same_order_version_polled_again_is_one_key_and_a_change_within_its_second_another():
    order = _sample()
    first = woocommerce.parse_polled(body=json.dumps(order).encode())
    again = woocommerce.parse_polled(body=json.dumps(order, indent=2).encode())
    order["status"] = "cancelled"  # same `date_modified_gmt`: WooCommerce keeps it to the second
    cancelled = woocommerce.parse_polled(body=json.dumps(order).encode())

    assert first.key == again.key
    assert cancelled.key != first.key and {line.status for line in cancelled.lines} == {LineStatus.CANCELLED}


def test_a_webhook_cannot_claim_the_poll_topic():
    with pytest.raises(MalformedPayload):
        woocommerce.parse(headers={"X-WC-Webhook-Topic": "order.polled"}, body=json.dumps(_sample()).encode())


@pytest.mark.django_db
def test_an_order_the_poll_cannot_read_is_set_aside_for_a_person_and_the_others_are_stored():
    # given: a poll's answer holds an order of a status we do not know, before a good one
    product_with_variants(handle="wm", skus=["WM-1"], stock=3)
    channel = ChannelFactory(name="woo-poll", kind=KIND)
    good = dict(_sample(), id=2, line_items=[dict(_sample()["line_items"][0], id=21, sku="WM-1", quantity=1)])
    odd = dict(good, id=1, status="awaiting-pickup", line_items=[dict(good["line_items"][0], id=11)])

    # when: the poll stores them in turn (`orders_poll` stores each order it read so)
    stored = [inbound_store_polled(channel=channel, body=json.dumps(order).encode()) for order in (odd, good)]
    inbound_batch_process(channel_id=channel.pk)

    # then: both stored; the good one sold, the odd one waits for a person, saying why
    assert stored == [True, True]
    events = {event.status: event for event in InboundEvent.objects.filter(channel=channel)}
    assert set(events) == {InboundEvent.Status.APPLIED, InboundEvent.Status.NEEDS_ATTENTION}
    assert "awaiting-pickup" in events[InboundEvent.Status.NEEDS_ATTENTION].detail
    assert events[InboundEvent.Status.NEEDS_ATTENTION].triggered_at is None  # it cannot move the cursor
    assert stock_totals(sku="WM-1") == (2, 0)


# --- over the stack ---------------------------------------------------------------------------


@pytest.mark.stack
def test_a_sale_whose_webhook_failed_is_booked_by_the_next_poll_once(live, store_name):
    # given
    channel = _store(live, store_name, "WP-1", 4, receiver_url=DEAD_RECEIVER)
    wait_stock_shown(live.sandbox, "WP-1", {(KIND, store_name): 4})

    # when: a customer buys one and the store cannot deliver the webhook
    order = live.sandbox.sales(KIND, store_name, sku="WP-1", quantity=1)["order"]
    wait_until(lambda: _deliveries(live, store_name, order["id"]) == ["failed"], message="the delivery did not fail")

    # then: beat's poll books it, once
    wait_until(lambda: stock_totals(sku="WP-1") == (3, 0), timeout=15, message="the poll did not book the sale")
    assert orders_poll(channel_id=channel.pk) == 0  # polled again: nothing new
    event = InboundEvent.objects.get(channel=channel)
    assert (event.topic, event.status) == ("order.polled", InboundEvent.Status.APPLIED)
    assert _sales("WP-1") == 1
    # and it says the poll caught what no webhook brought, in the event and in /metrics
    assert event.detail.startswith(CAUGHT_NOTE), event.detail
    wait_until(lambda: int(get_redis().hget(CAUGHT_KEY, str(channel.pk)) or 0) == 1, message="not counted")


@pytest.mark.stack
def test_a_sale_delivered_by_webhook_and_polled_counts_once(live, web_url, store_name):
    # given
    channel = _store(live, store_name, "WB-1", 4, receiver_url=web_url)
    wait_stock_shown(live.sandbox, "WB-1", {(KIND, store_name): 4})

    # when
    live.sandbox.sales(KIND, store_name, sku="WB-1", quantity=1)

    # then: the webhook and the poll each stored it, and the ledger sold it once
    applied = InboundEvent.objects.filter(channel=channel, status=InboundEvent.Status.APPLIED)
    wait_until(lambda: set(applied.values_list("topic", flat=True)) == {"order.created", "order.polled"},
               timeout=15, message=lambda: f"events: {list(InboundEvent.objects.values_list('topic', 'status'))}")
    assert stock_totals(sku="WB-1") == (3, 0)
    assert _sales("WB-1") == 1 and OrderLine.objects.filter(channel=channel).count() == 1


@pytest.mark.stack
def test_an_order_that_came_by_webhook_does_not_move_the_poll_past_an_earlier_one_whose_webhook_was_lost(
    live, web_url, store_name
):
    # given: a channel not polled yet (disabled while set up); its store lost a sale's webhook
    channel = _store(live, store_name, "WL-1", 5, receiver_url=DEAD_RECEIVER, enabled=False)
    lost = live.sandbox.sales(KIND, store_name, sku="WL-1", quantity=1)["order"]
    wait_until(lambda: _deliveries(live, store_name, lost["id"]) == ["failed"], message="the delivery did not fail")
    # and an order changed later than that by more than the poll's overlap came by webhook
    later = _later_order(lost, minutes=10)
    assert _deliver(web_url, channel.pk, later).status_code == 200
    wait_until(lambda: stock_totals(sku="WL-1") == (4, 0), message="the webhook's sale was not applied")

    # when: the channel is polled
    channel.enabled = True
    channel.save()

    # then: the lost sale is booked all the same
    wait_until(lambda: stock_totals(sku="WL-1") == (3, 0), timeout=15, message="the poll skipped the lost sale")
    polled = InboundEvent.objects.get(channel=channel, topic="order.polled")
    assert json.loads(polled.body)["id"] == lost["id"]
    assert _sales("WL-1") == 2


@pytest.mark.stack
def test_the_polls_overlap_stores_an_order_version_once_and_its_change_anew(live, store_name):
    # given: a sale whose webhook was lost, on a channel polled from now on
    channel = _store(live, store_name, "WO-1", 5, receiver_url=DEAD_RECEIVER, enabled=False)
    order = live.sandbox.sales(KIND, store_name, sku="WO-1", quantity=2)["order"]
    channel.enabled = True
    channel.save()

    # when: polled (by us, and maybe by beat too), then polled again over the overlap
    orders_poll(channel_id=channel.pk)
    again = orders_poll(channel_id=channel.pk)

    # then: the second poll fetched the same version again and stored nothing
    assert again == 0
    event = InboundEvent.objects.get(channel=channel)
    assert event.deliveries >= 2
    wait_until(lambda: stock_totals(sku="WO-1") == (3, 0), timeout=15, message="the sale was not applied")

    # and when the shop cancels it (its webhook lost too), the new version is polled and applied
    live.sandbox.order_action(KIND, store_name, order["id"], "cancel")
    wait_until(lambda: stock_totals(sku="WO-1") == (5, 0), timeout=15, message="the cancellation was not polled")
    assert InboundEvent.objects.filter(channel=channel, topic="order.polled").count() == 2
    assert _sales("WO-1") == 1


def _later_order(order: dict, *, minutes: int) -> dict:
    """Another order of the same shop, placed and changed `minutes` later."""
    later = copy.deepcopy(order)
    later["id"] = order["id"] + 1000
    later["line_items"][0]["id"] = later["id"] * 10 + 1
    for name in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt", "date_paid", "date_paid_gmt"):
        moment = datetime.fromisoformat(order[name]) + timedelta(minutes=minutes)
        later[name] = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return later


def _deliver(web_url: str, channel_id: int, order: dict) -> requests.Response:
    """The order's `order.created` webhook, as WooCommerce sends it, to the channel's endpoint."""
    body = wp_json_encode(order)
    headers = delivery_headers(topic="order.created", source="http://shop.test/", webhook_id=1,
                               delivery_id=uuid.uuid4().hex, secret=SECRET, body=body)
    return requests.post(f"{web_url}/webhooks/{channel_id}/", data=body, headers=headers, timeout=10)


@pytest.mark.stack
def test_a_poll_the_rate_limit_stops_half_way_keeps_the_pages_it_read(live, store_name):
    # given: five orders in the shop, and a channel (disabled: nothing else spends its bucket)
    # whose bucket holds two calls and refills one in 100 s
    channel = sandbox_channel(live, KIND, store_name, receiver_url=DEAD_RECEIVER, enabled=False,
                              settings={"rate_per_s": 0.01, "burst": 2})
    live.sandbox.put_item(KIND, store_name, "WT-1", price="10.00", available=10, title="WT-1")
    ids = [live.sandbox.sales(KIND, store_name, sku="WT-1", quantity=1)["order"]["id"] for _ in range(5)]
    adapter = adapter_for_channel(channel)
    since = datetime.now(UTC) - timedelta(hours=1)

    # when: a poll reads pages of two
    read = adapter.orders_updated_since(since, page_size=2)

    # then: the third page was refused, and the poll keeps the two it read (its cursor moves
    # on from them) instead of failing as a whole
    assert [int(order.order_id) for order in read] == ids[:4]
    # and refused on its first page, it says how long to wait
    with pytest.raises(ChannelThrottled) as throttled:
        adapter.orders_updated_since(since, page_size=2)
    assert throttled.value.retry_after > 1
