"""The WooCommerce adapter's order poll (`orders_updated_since`) against a stub shop: the
query it sends, its paging by `X-WP-TotalPages`, and what a throttle or a failure raises.
Against the sandbox, over real HTTP, in tests/channels/inbound/test_woocommerce_polling.py."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from channels.adapters.base import ChannelThrottled
from channels.adapters.rest import CallError

from .rest_fakes import FakeContext, install, reply
from .test_woocommerce import adapter

SINCE = datetime(2026, 3, 1, 14, 30, 5, 250000, tzinfo=timezone(timedelta(hours=2)))


def _order(order_id: int, modified: str = "2026-03-01T12:31:00") -> dict:
    return {"id": order_id, "status": "processing", "date_modified_gmt": modified, "line_items": []}


def _pages(*pages: list, total_pages: int | None = None):
    """A shop answering page n with `pages[n - 1]`, its X-WP-TotalPages the number of pages."""
    def answer(sent):
        page = int(sent.query["page"])
        rows = pages[page - 1] if page <= len(pages) else []
        return reply(200, rows, headers={"X-WP-TotalPages": str(total_pages or len(pages)), "X-WP-Total": "?"})
    return answer


def test_the_poll_asks_for_orders_modified_after_the_time_in_gmt_oldest_change_first(monkeypatch):
    # given
    session = install(monkeypatch, 9001, _pages([_order(7)]))

    # when
    orders = adapter(base_url="https://shop.test").orders_updated_since(SINCE)

    # then: GMT without an offset (WordPress would move a time with one into the site's zone)
    [sent] = session.sent
    assert sent.method == "GET" and sent.path == "/wp-json/wc/v3/orders"
    assert sent.query == {"modified_after": "2026-03-01T12:30:05", "dates_are_gmt": "true", "orderby": "modified",
                          "order": "asc", "per_page": "100", "page": "1"}
    assert [(order.order_id, order.updated_at) for order in orders] == [("7", "2026-03-01T12:31:00")]
    assert json.loads(orders[0].body) == _order(7)


def test_the_poll_follows_the_pages_the_shop_counts_and_stops_at_max_pages(monkeypatch):
    # given: three pages of two
    pages = [[_order(1), _order(2)], [_order(3), _order(4)], [_order(5)]]
    session = install(monkeypatch, 9001, _pages(*pages))

    # when
    every = adapter().orders_updated_since(SINCE, page_size=2)
    capped = adapter().orders_updated_since(SINCE, page_size=2, max_pages=2)

    # then
    assert [order.order_id for order in every] == ["1", "2", "3", "4", "5"]
    assert [order.order_id for order in capped] == ["1", "2", "3", "4"]
    assert [sent.query["page"] for sent in session.sent] == ["1", "2", "3", "1", "2"]


def test_rows_without_an_id_are_left_out_and_an_empty_page_ends_the_poll(monkeypatch):
    # given: a shop that says 5 pages but runs dry on the second
    session = install(monkeypatch, 9001, _pages([_order(1), "junk", {"status": "processing"}], [], total_pages=5))

    # when
    orders = adapter().orders_updated_since(SINCE)

    # then
    assert [order.order_id for order in orders] == ["1"]
    assert len(session.sent) == 2


def test_a_throttled_poll_raises_channel_throttled_and_a_failing_shop_its_error(monkeypatch):
    # given
    answers = iter([
        reply(429, {"code": "too_many", "message": "Slow down", "data": {"status": 429}}, headers={"Retry-After": "6"}),
        reply(500, {"code": "internal_server_error", "message": "Database gone", "data": {"status": 500}}),
    ])
    install(monkeypatch, 9001, lambda sent: next(answers))
    context = FakeContext()

    # when / then
    with pytest.raises(ChannelThrottled) as throttled:
        adapter(context).orders_updated_since(SINCE)
    with pytest.raises(CallError) as failed:
        adapter(context).orders_updated_since(SINCE)
    with pytest.raises(ChannelThrottled) as empty_bucket:
        adapter(FakeContext(waits={"default": [2.5]})).orders_updated_since(SINCE)

    assert throttled.value.retry_after == 6.0 and context.pauses == [(6.0, "default")]
    assert failed.value.code == "internal_server_error"
    assert empty_bucket.value.retry_after == 2.5
