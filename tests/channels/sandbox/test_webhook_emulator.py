"""The webhook emulator, over real HTTP against a sandbox subprocess (no database needed)."""
from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.sandbox import SandboxProcess, wait_until

SECRET = "whsec-test-secret"



@pytest.fixture
def store() -> str:
    # A fresh store per test keeps tests independent without resetting the whole sandbox.
    return f"shop-{uuid.uuid4().hex[:8]}"


def price_event(sku: str, price: str, compare_at_price: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "price.updated",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00+00:00",
        "data": {"sku": sku, "price": price, "compare_at_price": compare_at_price},
    }


def inventory_event(sku: str, available: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "inventory.updated",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00+00:00",
        "data": {"sku": sku, "available": available},
    }


def post_events(
    sandbox: SandboxProcess,
    store: str,
    events: list[dict[str, Any]] | None = None,
    *,
    secret: str | None = SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> requests.Response:
    """POST a batch signed as syncsvc signs it (unsigned when `secret` is None)."""
    raw = body if body is not None else json.dumps({"events": events or []}).encode()
    headers = {"Content-Type": "application/json", "X-Syncsvc-Delivery": str(uuid.uuid4())}
    if secret is not None:
        sent_at = str(timestamp if timestamp is not None else int(time.time()))
        digest = hmac.new(secret.encode(), f"{sent_at}.".encode() + raw, hashlib.sha256).hexdigest()
        headers |= {"X-Syncsvc-Timestamp": sent_at, "X-Syncsvc-Signature": f"v1={digest}"}
    return requests.post(f"{sandbox.url}/webhook/{store}", data=raw, headers=headers, timeout=10)


def test_signed_batch_is_applied_in_order_and_visible_through_items(sandbox, control, store):
    # given
    control.config("webhook", store, secret=SECRET)
    events = [price_event("SKU-1", "12.50", "15.00"), inventory_event("SKU-1", 7), price_event("SKU-1", "11.00")]

    # when
    response = post_events(sandbox, store, events)

    # then
    assert response.status_code == 200
    assert response.json() == {"received": 3, "applied": 3, "duplicates": 0, "ignored": 0}
    item = control.item("webhook", store, "SKU-1")
    assert item["price"] == "11.00"  # the later price event wins: applied in order
    assert item["compare_at_price"] is None
    assert item["available"] == 7
    assert item["writes"] == 3
    assert item["updated_at"]
    assert [entry["signature"] for entry in control.requests("webhook", store)] == ["valid"]


def test_product_event_sets_title_and_keeps_handle_and_description(sandbox, control, store):
    # given
    event = {
        "id": str(uuid.uuid4()),
        "type": "product.updated",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00+00:00",
        "data": {"sku": "SKU-P", "handle": "blue-mug", "title": "Blue mug", "description": "A mug.", "attributes": {}},
    }

    # when
    response = post_events(sandbox, store, [event], secret=None)

    # then
    assert response.status_code == 200
    item = control.item("webhook", store, "SKU-P")
    assert (item["title"], item["handle"], item["description"]) == ("Blue mug", "blue-mug", "A mug.")


def test_unsigned_batch_is_accepted_and_logged_unchecked_when_no_secret_is_configured(sandbox, control, store):
    # when
    response = post_events(sandbox, store, [price_event("SKU-1", "9.99")], secret=None)

    # then
    assert response.status_code == 200
    assert control.item("webhook", store, "SKU-1")["price"] == "9.99"
    assert control.requests("webhook", store)[0]["signature"] == "unchecked"


def test_bad_signature_is_refused_with_401_and_nothing_is_applied(sandbox, control, store):
    # given
    control.config("webhook", store, secret=SECRET)

    # when
    response = post_events(sandbox, store, [price_event("SKU-1", "12.50")], secret="not-the-secret")

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "invalid signature"
    assert control.item("webhook", store, "SKU-1") is None
    [entry] = control.requests("webhook", store)
    assert (entry["status"], entry["signature"], entry["events"]) == (401, "invalid", 1)


def test_body_changed_after_signing_is_refused(sandbox, control, store):
    # given
    control.config("webhook", store, secret=SECRET)
    signed = json.dumps({"events": [price_event("SKU-1", "12.50")]}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + signed, hashlib.sha256).hexdigest()
    tampered = signed.replace(b"12.50", b"0.01")

    # when
    response = requests.post(
        f"{sandbox.url}/webhook/{store}",
        data=tampered,
        headers={
            "Content-Type": "application/json",
            "X-Syncsvc-Timestamp": timestamp,
            "X-Syncsvc-Signature": f"v1={signature}",
        },
        timeout=10,
    )

    # then
    assert response.status_code == 401
    assert control.item("webhook", store, "SKU-1") is None


def test_stale_timestamp_is_refused_with_401_even_when_correctly_signed(sandbox, control, store):
    # given
    control.config("webhook", store, secret=SECRET)

    # when
    response = post_events(sandbox, store, [price_event("SKU-1", "12.50")], timestamp=int(time.time()) - 301)

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "timestamp outside tolerance"
    assert control.item("webhook", store, "SKU-1") is None


def test_duplicate_event_id_is_applied_once(sandbox, control, store):
    # given
    event = price_event("SKU-1", "12.50")
    assert post_events(sandbox, store, [event]).status_code == 200

    # when: redelivered, once alone and once repeated inside a batch
    again = post_events(sandbox, store, [event, event])

    # then
    assert again.status_code == 200
    assert again.json() == {"received": 2, "applied": 0, "duplicates": 2, "ignored": 0}
    assert control.item("webhook", store, "SKU-1")["writes"] == 1


def test_a_v2_price_event_sets_the_amount_and_currency(sandbox, control, store):
    # given
    event = {**price_event("SKU-2", "0"), "schema_version": 2,
             "data": {"sku": "SKU-2", "price": {"amount": "12.50", "currency": "EUR"},
                      "compare_at_price": {"amount": "15.00", "currency": "EUR"}}}

    # when
    response = post_events(sandbox, store, [event])

    # then
    assert response.status_code == 200 and response.json()["applied"] == 1
    item = control.item("webhook", store, "SKU-2")
    assert (item["price"], item["compare_at_price"], item["currency"]) == ("12.50", "15.00", "EUR")


def test_the_control_api_lists_received_events_as_sent_with_their_outcome(sandbox, control, store):
    # given
    control.config("webhook", store, secret=SECRET)
    first = price_event("SKU-1", "5.00")
    unknown_version = {**price_event("SKU-1", "6.00"), "schema_version": 9}
    post_events(sandbox, store, [first, unknown_version])
    mark = time.time()

    # when
    post_events(sandbox, store, [first])
    everything, later = control.events(store), control.events(store, since=mark)

    # then
    assert [(e["event"], e["outcome"], e["signature"]) for e in everything] == [
        (first, "applied", "valid"), (unknown_version, "ignored", "valid"), (first, "duplicate", "valid"),
    ]
    assert [e["outcome"] for e in later] == ["duplicate"]
    assert control.item("webhook", store, "SKU-1")["price"] == "5.00"


def test_unknown_event_type_is_accepted_and_counted_as_ignored(sandbox, control, store):
    # given
    unknown = {"id": str(uuid.uuid4()), "type": "collection.deleted", "schema_version": 1, "data": {}}

    # when
    response = post_events(sandbox, store, [unknown, price_event("SKU-1", "5.00")])

    # then
    assert response.status_code == 200
    assert response.json() == {"received": 2, "applied": 1, "duplicates": 0, "ignored": 1}


@pytest.mark.parametrize(
    ("body", "message_part"),
    [(b"{not json", "not valid JSON"), (b'{"evts": []}', '"events" list'), (b'{"events": {}}', '"events" list')],
    ids=["not-json", "no-events-key", "events-not-a-list"],
)
def test_malformed_body_is_refused_with_400(sandbox, control, store, body, message_part):
    # when
    response = post_events(sandbox, store, body=body)

    # then
    assert response.status_code == 400
    assert message_part in response.json()["error"]
    assert control.items("webhook", store) == []


@pytest.mark.parametrize(
    ("bad_event", "message_part"),
    [
        ({"type": "price.updated", "data": {"sku": "S", "price": "1.00"}}, "events[1].id"),
        ({"id": "e", "data": {"sku": "S"}}, "events[1].type"),
        ({"id": "e", "type": "price.updated", "schema_version": 1, "data": {"price": "1.00"}}, "events[1].data.sku"),
        ({"id": "e", "type": "price.updated", "schema_version": 1, "data": {"sku": "S", "price": 1.5}}, "events[1].data.price"),
        ({"id": "e", "type": "inventory.updated", "schema_version": 1, "data": {"sku": "S", "available": "3"}},
         "events[1].data.available"),
        ({"id": "e", "type": "price.updated", "data": {"sku": "S", "price": "1.00"}}, "events[1].schema_version"),
        ({"id": "e", "type": "price.updated", "schema_version": 2, "data": {"sku": "S", "price": "1.00"}},
         "events[1].data.price"),
        ({"id": "e", "type": "price.updated", "schema_version": 2,
          "data": {"sku": "S", "price": {"amount": "1.00", "currency": "usd"}}}, "events[1].data.price.currency"),
    ],
    ids=["no-id", "no-type", "no-sku", "price-not-a-decimal-string", "available-not-an-integer", "no-schema-version",
         "v2-price-not-money", "v2-currency-not-iso"],
)
def test_batch_with_one_malformed_event_is_refused_whole(sandbox, control, store, bad_event, message_part):
    # given: a valid event before the bad one, so a partial apply would show
    events = [price_event("SKU-OK", "1.00"), bad_event]

    # when
    response = post_events(sandbox, store, events)

    # then
    assert response.status_code == 400
    assert message_part in response.json()["error"]
    assert control.items("webhook", store) == []


def test_count_fault_answers_the_next_n_requests_then_recovers(sandbox, control, store):
    # given
    control.fault("webhook", store, status=503, count=2)

    # when
    statuses = [post_events(sandbox, store, [price_event("SKU-1", "1.00")]).status_code for _ in range(3)]

    # then
    assert statuses == [503, 503, 200]
    assert [entry["status"] for entry in control.requests("webhook", store)] == [503, 503, 200]
    assert control.item("webhook", store, "SKU-1")["writes"] == 1


def test_429_fault_carries_retry_after(sandbox, control, store):
    # given
    control.fault("webhook", store, status=429, count=1)
    custom_fault = control.fault("webhook", f"{store}-b", status=429, count=1, retry_after=7)

    # when
    default = post_events(sandbox, store, [])
    custom = post_events(sandbox, f"{store}-b", [])

    # then
    assert (default.status_code, default.headers["Retry-After"]) == (429, "1")
    assert (custom.status_code, custom.headers["Retry-After"]) == (429, "7")
    assert custom_fault["retry_after"] == 7
    assert "error" in default.json()


def test_timed_fault_lasts_for_its_seconds(sandbox, control, store):
    # given
    control.fault("webhook", store, status=500, seconds=0.5)

    # when
    first = post_events(sandbox, store, [])

    # then: refused now, accepted once the window has passed
    assert first.status_code == 500
    wait_until(
        lambda: post_events(sandbox, store, []).status_code == 200, timeout=5, message="the timed fault never ended"
    )


def test_latency_fault_delays_every_request_until_cleared(sandbox, control, store):
    # given
    control.fault("webhook", store, latency_ms=300)

    # when
    started = time.monotonic()
    slow = post_events(sandbox, store, [])
    slow_elapsed = time.monotonic() - started
    control.fault("webhook", store, clear=True)
    fast = post_events(sandbox, store, [])

    # then
    assert slow.status_code == fast.status_code == 200
    assert slow_elapsed >= 0.3
    slow_entry, fast_entry = control.requests("webhook", store)
    assert slow_entry["duration_ms"] >= 300
    assert fast_entry["duration_ms"] < 100


def test_clear_removes_a_pending_status_fault(sandbox, control, store):
    # given
    control.fault("webhook", store, status=503, count=5)

    # when
    control.fault("webhook", store, clear=True)

    # then
    assert post_events(sandbox, store, []).status_code == 200


def test_bad_fault_input_is_refused_naming_the_field(sandbox, control, store):
    # when
    response = requests.post(f"{sandbox.url}/_sandbox/webhook/{store}/faults", json={"status": 503, "count": "two"}, timeout=10)

    # then
    assert response.status_code == 400
    assert "count" in response.json()["error"]


def test_requests_log_filters_by_since_in_unix_seconds_and_iso(sandbox, control, store):
    # given
    post_events(sandbox, store, [price_event("SKU-1", "1.00")])
    [first] = control.requests("webhook", store)

    # when
    post_events(sandbox, store, [price_event("SKU-1", "2.00"), inventory_event("SKU-1", 3)])

    # then
    by_unix = control.requests("webhook", store, since=first["ts"])
    by_iso = control.requests("webhook", store, since=first["time"])
    assert [entry["seq"] for entry in by_unix] == [first["seq"] + 1]
    assert by_iso == by_unix
    entry = by_unix[0]
    assert (entry["method"], entry["path"], entry["status"], entry["events"]) == ("POST", f"/webhook/{store}", 200, 2)
    assert entry["duration_ms"] >= 0


def test_control_calls_are_not_logged_as_requests(sandbox, control, store):
    # when
    control.put_item("webhook", store, "SKU-1", price="1.00")
    control.item("webhook", store, "SKU-1")

    # then
    assert control.requests("webhook", store) == []


def test_put_item_seeds_a_store_without_counting_as_a_write(sandbox, control, store):
    # when
    put = control.put_item("webhook", store, "SKU-1", price="12.50", available=4, title="Mug")
    edited = control.put_item("webhook", store, "SKU-1", available=2)

    # then
    assert (put["price"], put["available"], put["title"], put["writes"]) == ("12.50", 4, "Mug", 0)
    assert (edited["price"], edited["available"], edited["writes"]) == ("12.50", 2, 0)
    assert control.item("webhook", store, "SKU-1") == edited
    assert control.items("webhook", store) == [edited]


def test_sku_with_a_slash_is_addressable_when_encoded(sandbox, control, store):
    # when
    control.put_item("webhook", store, "A/B 1", price="3.00")

    # then
    assert control.item("webhook", store, "A/B 1")["sku"] == "A/B 1"


def test_reset_forgets_one_store_or_all_of_them(sandbox, control, store):
    # given
    for name in (store, f"{store}-other"):
        control.put_item("webhook", name, "SKU-1", price="1.00")
        control.fault("webhook", name, status=503, count=1)

    # when
    control.reset_store("webhook", store)

    # then
    assert control.item("webhook", store, "SKU-1") is None
    assert post_events(sandbox, store, []).status_code == 200
    assert control.item("webhook", f"{store}-other", "SKU-1") is not None

    # when
    control.reset()

    # then
    assert control.item("webhook", f"{store}-other", "SKU-1") is None


def test_config_is_echoed_without_secret_values(sandbox, control, store):
    # when
    echoed = control.config("webhook", store, secret=SECRET, plan="basic", webhook_url="http://127.0.0.1:1/hook")

    # then
    assert echoed == {"secret": "***", "plan": "basic", "webhook_url": "http://127.0.0.1:1/hook"}


def test_webhook_kind_does_not_sell(sandbox, store):
    # when
    response = requests.post(f"{sandbox.url}/_sandbox/webhook/{store}/sales", json={"sku": "S", "quantity": 1}, timeout=10)

    # then
    assert response.status_code == 400
    assert response.json() == {"error": "the webhook kind does not sell"}


def test_unknown_kind_and_unknown_paths_answer_404_json(sandbox):
    # when
    unknown_kind = requests.get(f"{sandbox.url}/webhok/shop/anything", timeout=10)
    unknown_control = requests.get(f"{sandbox.url}/_sandbox/nothing-here", timeout=10)

    # then
    assert unknown_kind.status_code == 404
    assert "Did you mean 'webhook'" in unknown_kind.json()["error"]
    assert unknown_control.status_code == 404
    assert unknown_control.headers["Content-Type"] == "application/json"


def test_trailing_slash_on_the_webhook_path_is_accepted(sandbox, control, store):
    # when
    response = requests.post(f"{sandbox.url}/webhook/{store}/", json={"events": [price_event("SKU-1", "1.00")]}, timeout=10)

    # then
    assert response.status_code == 200
    assert control.item("webhook", store, "SKU-1")["price"] == "1.00"


def test_connection_is_kept_alive_across_requests(sandbox, store):
    # given
    address = urlsplit(sandbox.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    body = json.dumps({"events": []})

    # when
    answers = []
    for _ in range(3):
        connection.request("POST", f"/webhook/{store}", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        answers.append((response.status, id(connection.sock)))
    connection.close()

    # then: http.client drops its socket when the server closes, so one id means one connection
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({socket_id for _, socket_id in answers}) == 1
    assert answers[0][1] != id(None)


def test_serves_concurrent_keep_alive_clients_quickly(sandbox, control, store):
    # given: four clients, each on its own keep-alive session
    def client(number: int) -> list[float]:
        session = requests.Session()
        latencies = []
        for index in range(100):
            started = time.monotonic()
            response = session.post(
                f"{sandbox.url}/webhook/{store}",
                json={"events": [price_event(f"SKU-{number}", f"{index}.00")]},
                timeout=10,
            )
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
        return latencies

    # when
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        latencies = sorted(latency for result in pool.map(client, range(4)) for latency in result)
    elapsed = time.monotonic() - started

    # then: 400 requests well above 300/s, no request anywhere near a Nagle stall
    assert elapsed < 4.0, f"400 requests took {elapsed:.2f} s"
    assert latencies[int(len(latencies) * 0.95)] < 0.1
    assert len(control.requests("webhook", store)) == 400
    assert all(control.item("webhook", store, f"SKU-{n}")["price"] == "99.00" for n in range(4))
