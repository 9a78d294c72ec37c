"""The WooCommerce emulator's order list (`GET /orders`) filtered by date as wc/v3 does it:
`after` / `before`, `modified_after` / `modified_before` (ISO 8601, strict), `dates_are_gmt`,
`orderby=modified`; over real HTTP against a sandbox subprocess. The sort and the date reading
are also checked as plain functions, where the times can be chosen."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from channels.sandbox.woocommerce.order_query import order_query, wp_date_time
from channels.sandbox.woocommerce.params import ParamErrors
from tests.channels.sandbox.test_woocommerce_emulator import (
    KEY,
    KIND,
    SECRET,
    Woo,
)
from tests.support.sandbox import SandboxControl, SandboxProcess


@pytest.fixture
def store(control: SandboxControl) -> str:
    name = f"shop-{uuid.uuid4().hex[:8]}"
    control.config(KIND, name, consumer_key=KEY, consumer_secret=SECRET)
    return name


@pytest.fixture
def woo(sandbox: SandboxProcess, store: str) -> Woo:
    return Woo(sandbox, store)


def _shifted(wp_time: str, **delta: float) -> str:
    return (datetime.fromisoformat(wp_time) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S")


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [order["id"] for order in response.json()]


def test_a_status_change_moves_date_modified_and_modified_after_finds_only_later_changes(control, store, woo, receiver):
    # given: two sales, then the first is cancelled
    control.config(KIND, store, webhook_url=receiver.url)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=5)
    first = control.sales(KIND, store, sku="SKU-1", quantity=1, order_id=900)["order"]
    second = control.sales(KIND, store, sku="SKU-1", quantity=1, order_id=800)["order"]
    control.order_action(KIND, store, 900, "cancel")

    # when
    cancelled = woo.basic("GET", "/orders/900").json()
    newest = max(cancelled["date_modified_gmt"], second["date_modified_gmt"])
    since = _shifted(second["date_modified_gmt"], seconds=-1)
    gmt = woo.basic("GET", "/orders", params={"modified_after": since, "dates_are_gmt": "true",
                                              "orderby": "modified", "order": "asc"})
    strict = woo.basic("GET", "/orders", params={"modified_after": newest, "dates_are_gmt": "true"})
    local = woo.basic("GET", "/orders", params={"modified_after": since, "orderby": "modified", "order": "asc"})
    with_offset = woo.basic("GET", "/orders", params={"modified_after": _shifted(since, hours=2) + "+02:00",
                                                      "orderby": "modified", "order": "asc"})
    changed = cancelled["date_modified_gmt"]
    before = woo.basic("GET", "/orders", params={"modified_before": changed, "dates_are_gmt": "1"})
    up_to = woo.basic("GET", "/orders", params={"modified_before": _shifted(changed, seconds=1), "dates_are_gmt": "1"})

    # then: the cancellation is a change of the order (status and date_modified); the filter
    # is strict; the site's local time is its GMT (UTC), and an offset is read as one
    assert cancelled["status"] == "cancelled"
    assert cancelled["date_modified_gmt"] >= first["date_modified_gmt"]
    assert cancelled["date_modified"] == cancelled["date_modified_gmt"]
    # 800 was last changed no later than 900 (cancelled after it) and has the lower id
    assert _ids(gmt) == [800, 900] and gmt.headers["X-WP-Total"] == "2"
    assert 900 not in _ids(strict) and 800 not in _ids(strict)
    assert _ids(local) == _ids(with_offset) == [800, 900]
    assert 900 not in _ids(before) and 900 in _ids(up_to)


def test_published_after_and_before_bound_the_creation_date(control, store, woo, receiver):
    # given
    control.config(KIND, store, webhook_url=receiver.url)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=5)
    order = control.sales(KIND, store, sku="SKU-1", quantity=1)["order"]
    created = order["date_created_gmt"]

    # when
    around = {"after": _shifted(created, seconds=-1), "before": _shifted(created, seconds=1), "dates_are_gmt": "true"}
    later = {"after": created, "dates_are_gmt": "true"}

    # then
    assert _ids(woo.basic("GET", "/orders", params=around)) == [order["id"]]
    assert _ids(woo.basic("GET", "/orders", params=later)) == []


def test_orders_modified_after_are_paged_with_total_headers(control, store, woo, receiver):
    # given
    control.config(KIND, store, webhook_url=receiver.url)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=5)
    orders = [control.sales(KIND, store, sku="SKU-1", quantity=1)["order"] for _ in range(3)]
    since = _shifted(orders[0]["date_modified_gmt"], seconds=-1)

    # when
    pages = [woo.basic("GET", "/orders", params={"modified_after": since, "dates_are_gmt": "true",
                                                 "orderby": "modified", "order": "asc", "per_page": 2, "page": page})
             for page in (1, 2)]

    # then
    assert [response.headers["X-WP-TotalPages"] for response in pages] == ["2", "2"]
    assert _ids(pages[0]) + _ids(pages[1]) == [order["id"] for order in orders]


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "2026-02-30T00:00:00", "2026-01-01T00:00:00+25:00",
                                   "2026-01-01T00:00:00 00:00"])
def test_a_bad_date_is_rest_invalid_param_naming_the_parameter(store, woo, value):
    # when
    response = woo.basic("GET", "/orders", params={"modified_after": value, "before": "2026-01-01T00:00:00Z"})

    # then: WordPress's shape, the bad parameter named (and only it)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "rest_invalid_param" and body["data"]["status"] == 400
    assert body["message"] == "Invalid parameter(s): modified_after"
    assert body["data"]["params"] == {"modified_after": "Invalid date."}
    assert body["data"]["details"]["modified_after"]["code"] == "rest_invalid_date"


def test_dates_are_gmt_must_be_a_boolean_and_orderby_one_of_the_route_choices(store, woo):
    response = woo.basic("GET", "/orders", params={"dates_are_gmt": "perhaps", "orderby": "price"})

    assert response.status_code == 400
    assert set(response.json()["data"]["params"]) == {"dates_are_gmt", "orderby"}


# --- the filters as plain functions, with chosen times -------------------------------------------


def _order(order_id: int, created: str, modified: str) -> dict:
    return {"id": order_id, "date_created": created, "date_created_gmt": created,
            "date_modified": modified, "date_modified_gmt": modified}


def test_orderby_modified_sorts_by_the_last_change_then_id_and_date_by_creation():
    # given: 1 was placed first and changed last
    orders = [_order(1, "2026-01-01T10:00:00", "2026-01-01T12:00:00"),
              _order(2, "2026-01-01T11:00:00", "2026-01-01T11:00:00"),
              _order(3, "2026-01-01T11:00:00", "2026-01-01T11:00:00")]
    errors = ParamErrors()

    # when
    by_modified = order_query({}, errors, orderby="modified", order="asc").apply(orders)
    by_date = order_query({}, errors, orderby="date", order="desc").apply(orders)
    since = order_query({"modified_after": "2026-01-01T11:00:00", "dates_are_gmt": "true"}, errors,
                        orderby="modified", order="asc").apply(orders)

    # then
    assert [o["id"] for o in by_modified] == [2, 3, 1]
    assert [o["id"] for o in by_date] == [3, 2, 1]
    assert [o["id"] for o in since] == [1]
    assert not errors.messages


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01T12:00:00", datetime(2026, 1, 1, 12)),
    ("2026-01-01 12:00:00.75", datetime(2026, 1, 1, 12)),
    ("2026-01-01T12:00:00Z", datetime(2026, 1, 1, 12)),
    ("2026-01-01T14:30:00+02:30", datetime(2026, 1, 1, 12)),
    ("2026-01-01T07:00:00-05", datetime(2026, 1, 1, 12)),
    ("2026-01-01T12:00", None),
    ("2026-01-01T12:00:00+0200", None),
])
def test_a_date_time_argument_is_read_in_the_site_timezone_to_the_second(text, expected):
    assert wp_date_time(text) == expected
