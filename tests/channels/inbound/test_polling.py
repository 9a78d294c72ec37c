"""Magento sends no order webhooks: beat polls its orders by `updated_at`, and each new
version of an order is stored and applied once, like a webhook."""
from __future__ import annotations

import json
import re

import pytest

from channels.inbound import magento
from channels.inbound.base import LineStatus
from channels.models import InboundEvent, OrderLine
from channels.services.polling import orders_poll
from inventory.models import StockMovement
from inventory.selectors import stock_totals
from tests.factories import product_with_variants, sandbox_channel
from tests.support.reference import reference_file
from tests.support.sandbox import wait_until
from tests.support.stock import wait_stock_shown


def _docs_order() -> bytes:
    """Adobe's example order; the docs abbreviate lists with `...` lines, dropped here."""
    text = reference_file("samples/magento-order-get.docs-abbreviated.txt").read_text()
    kept = [line for line in text.splitlines() if line.strip() != "..."]
    return re.sub(r",(\s*[\]}])", r"\1", "\n".join(kept)).encode()


def test_magento_docs_order_is_read_line_by_line_and_is_not_paid_yet():
    parsed = magento.parse(headers={}, body=_docs_order())

    assert parsed.key.startswith("order:3:2017-08-21 22:22:20:") and parsed.order_id == "3"
    assert [(line.line_id, line.sku, line.quantity, line.status) for line in parsed.lines] == [
        ("3", "WS12-M-Orange", 1, LineStatus.OPEN),
    ]


def test_magento_configurable_parent_item_moves_no_stock_and_cancelled_quantity_is_not_held():
    order = json.loads(_docs_order())
    child = order["items"][0]
    parent = dict(child, item_id=2, sku=child["sku"], product_type="configurable")
    order["items"] = [parent, dict(child, parent_item_id=2, qty_ordered=3, qty_canceled=1)]
    order["state"] = "processing"

    parsed = magento.parse(headers={}, body=json.dumps(order).encode())

    assert [(line.line_id, line.quantity, line.status) for line in parsed.lines] == [("3", 2, LineStatus.PAID)]


def test_two_changes_of_a_magento_order_within_one_second_are_two_events_and_a_repoll_is_one():
    order = json.loads(_docs_order())
    first = magento.parse(headers={}, body=json.dumps(order).encode())
    again = magento.parse(headers={}, body=json.dumps(order).encode())
    order["state"] = "canceled"  # same `updated_at`: Magento's clock has one-second resolution
    cancelled = magento.parse(headers={}, body=json.dumps(order).encode())

    assert first.key == again.key
    assert cancelled.key != first.key


def test_a_closed_magento_order_leaves_its_sale_standing():
    order = json.loads(_docs_order())
    order["state"] = "closed"  # fully refunded; "Return to Stock" is not in the order

    parsed = magento.parse(headers={}, body=json.dumps(order).encode())

    assert [line.status for line in parsed.lines] == [LineStatus.REFUNDED]


@pytest.mark.stack
def test_a_magento_sale_is_polled_and_reserved_until_paid(live, store_name):
    # given
    channel = sandbox_channel(live, "magento", store_name)
    live.sandbox.put_item("magento", store_name, "MAG-1", price="10.00", available=6, title="MAG-1")
    product_with_variants(handle="mag", skus=["MAG-1"], stock=6)
    wait_stock_shown(live.sandbox, "MAG-1", {("magento", store_name): 6})

    # when: a customer orders on the storefront (state "new": not invoiced yet)
    live.sandbox.sales("magento", store_name, sku="MAG-1", quantity=2)

    # then: beat's poll finds it and the units are held
    wait_until(lambda: stock_totals(sku="MAG-1") == (6, 2), timeout=15, message="the polled order was not reserved")
    assert OrderLine.objects.get(channel=channel).state == OrderLine.State.RESERVED


@pytest.mark.stack
def test_polling_again_stores_nothing_new(live, store_name):
    # given: a channel that sells on order creation, and one sale already applied
    channel = sandbox_channel(live, "magento", store_name, settings={"commit_on": "created"}, enabled=False)
    live.sandbox.put_item("magento", store_name, "MAG-2", price="10.00", available=6, title="MAG-2")
    product_with_variants(handle="mag2", skus=["MAG-2"], stock=6)
    live.sandbox.sales("magento", store_name, sku="MAG-2", quantity=1)
    channel.enabled = True
    channel.save()

    # when: polled (by us, and maybe by beat too), then polled again
    orders_poll(channel_id=channel.pk)
    again = orders_poll(channel_id=channel.pk)

    # then: the second poll finds the same version of the order and stores nothing
    assert again == 0
    wait_until(lambda: stock_totals(sku="MAG-2") == (5, 0), timeout=15, message="the sale was not applied")
    assert InboundEvent.objects.filter(channel=channel).count() == 1
    assert StockMovement.objects.filter(variant__sku="MAG-2", reason="sale").count() == 1
