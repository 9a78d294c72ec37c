"""The WooCommerce REST (wc/v3) emulator, over real HTTP against a sandbox subprocess.

The OAuth 1.0a signer below is written here from RFC 5849 and WooCommerce's docs, not taken
from the emulator, so a mistake on either side shows up as a failing signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from tests.support.reference import reference_file
from tests.support.sandbox import (
    SandboxControl,
    SandboxControlError,
    SandboxProcess,
    wait_until,
)

KIND = "woocommerce"
KEY = "ck_0123456789abcdef"
SECRET = "cs_fedcba9876543210"
WEBHOOK_SECRET = "wc-webhook-secret"
SAMPLE_ORDER = reference_file("samples/woocommerce-order-created.json")


@pytest.fixture
def store(control: SandboxControl) -> str:
    # A fresh store per test, with API keys, keeps tests independent.
    name = f"shop-{uuid.uuid4().hex[:8]}"
    control.config(KIND, name, consumer_key=KEY, consumer_secret=SECRET)
    return name


class Woo:
    """A minimal wc/v3 client for one store, signing as the docs describe."""

    def __init__(self, sandbox: SandboxProcess, store: str) -> None:
        self.base = f"{sandbox.url}/woocommerce/{store}/wp-json/wc/v3"

    def url(self, path: str) -> str:
        return self.base + path

    def oauth_query(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        secret: str = SECRET,
        signature_method: str = "HMAC-SHA1",
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> str:
        """The query string of a one-legged OAuth 1.0a request (RFC 5849, empty token secret)."""
        oauth = {
            "oauth_consumer_key": KEY,
            "oauth_nonce": nonce or uuid.uuid4().hex,
            "oauth_signature_method": signature_method,
            "oauth_timestamp": str(timestamp if timestamp is not None else int(time.time())),
        }
        pairs = [(str(name), str(value)) for name, value in {**(params or {}), **oauth}.items()]
        encode = lambda text: quote(text, safe="~")  # noqa: E731
        normalized = "&".join(f"{name}={value}" for name, value in sorted((encode(n), encode(v)) for n, v in pairs))
        base_string = "&".join((method, encode(self.url(path)), encode(normalized)))
        digest = hashlib.sha1 if signature_method == "HMAC-SHA1" else hashlib.sha256
        signature = base64.b64encode(hmac.new(f"{secret}&".encode(), base_string.encode(), digest).digest()).decode()
        return urlencode([*pairs, ("oauth_signature", signature)])

    def signed(
        self, method: str, path: str, params: dict[str, Any] | None = None, json_body: Any = None, **signing: Any
    ) -> requests.Response:
        query = self.oauth_query(method, path, params, **signing)
        return requests.request(method, f"{self.url(path)}?{query}", json=json_body, timeout=10)

    def basic(
        self, method: str, path: str, json_body: Any = None, secret: str = SECRET, **kwargs: Any
    ) -> requests.Response:
        return requests.request(method, self.url(path), json=json_body, auth=(KEY, secret), timeout=10, **kwargs)


@pytest.fixture
def woo(sandbox: SandboxProcess, store: str) -> Woo:
    return Woo(sandbox, store)


def product_id(control: SandboxControl, store: str, sku: str) -> int:
    item = control.item(KIND, store, sku)
    assert item is not None, f"{sku} was never created"
    return int(item["id"])


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("signature_method", ["HMAC-SHA1", "HMAC-SHA256"])
def test_oauth_signed_request_is_accepted(control, store, woo, signature_method):
    # given
    control.put_item(KIND, store, "SKU-1", price="12.50", available=4)

    # when
    response = woo.signed("GET", "/products", {"sku": "SKU-1"}, signature_method=signature_method)

    # then
    assert response.status_code == 200, response.text
    assert [(p["sku"], p["regular_price"], p["stock_quantity"]) for p in response.json()] == [("SKU-1", "12.50", 4)]
    assert control.requests(KIND, store)[-1]["auth"] == "oauth1"


def test_oauth_signature_made_with_the_wrong_secret_is_refused(store, woo):
    # when
    response = woo.signed("GET", "/products", secret="cs_not-the-secret")

    # then
    assert response.status_code == 401
    assert response.json() == {
        "code": "woocommerce_rest_authentication_error",
        "message": "Invalid signature - provided signature does not match.",
        "data": {"status": 401},
    }


def test_oauth_signature_over_different_parameters_is_refused(sandbox, store, woo):
    # given: a request signed for per_page=5, sent with per_page=50
    query = woo.oauth_query("GET", "/products", {"per_page": 5}).replace("per_page=5", "per_page=50")

    # when
    response = requests.get(f"{woo.url('/products')}?{query}", timeout=10)

    # then
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid signature - provided signature does not match."


def test_oauth_nonce_cannot_be_replayed(store, woo):
    # given
    nonce = uuid.uuid4().hex
    first = woo.signed("GET", "/products", nonce=nonce)

    # when
    replay = woo.signed("GET", "/products", nonce=nonce)

    # then
    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["message"] == "Invalid nonce - nonce has already been used."


@pytest.mark.parametrize("age_s", [16 * 60, -16 * 60])
def test_oauth_timestamp_outside_the_fifteen_minute_window_is_refused(store, woo, age_s):
    # when
    response = woo.signed("GET", "/products", timestamp=int(time.time()) - age_s)

    # then
    assert response.status_code == 401
    assert response.json() == {
        "code": "woocommerce_rest_authentication_error",
        "message": "Invalid timestamp.",
        "data": {"status": 401},
    }


def test_oauth_with_a_missing_parameter_names_it(sandbox, store, woo):
    # when
    response = requests.get(f"{woo.url('/products')}?oauth_consumer_key={KEY}&oauth_nonce=abc", timeout=10)

    # then
    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_authentication_missing_parameter"
    assert (
        response.json()["message"]
        == "Missing OAuth parameters oauth_timestamp, oauth_signature, oauth_signature_method"
    )


def test_basic_auth_is_accepted_as_behind_a_tls_proxy_and_a_wrong_secret_is_refused(control, store, woo):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    accepted = woo.basic("GET", "/products")
    refused = woo.basic("GET", "/products", secret="cs_wrong")

    # then
    assert accepted.status_code == 200
    assert [product["sku"] for product in accepted.json()] == ["SKU-1"]
    assert refused.status_code == 401
    assert refused.json()["message"] == "Consumer secret is invalid."
    assert refused.headers["WWW-Authenticate"].startswith('Basic realm="WooCommerce API.')


def test_consumer_key_and_secret_query_parameters_are_accepted(store, woo):
    # when
    response = requests.get(woo.url("/products"), params={"consumer_key": KEY, "consumer_secret": SECRET}, timeout=10)

    # then
    assert response.status_code == 200
    assert response.json() == []


def test_request_without_credentials_gets_each_routes_permission_error(store, woo):
    # when
    listing = requests.get(woo.url("/products"), timeout=10)
    batch = requests.post(woo.url("/products/batch"), json={"update": []}, timeout=10)

    # then
    assert listing.status_code == 401
    assert listing.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }
    assert batch.status_code == 401
    assert batch.json()["code"] == "woocommerce_rest_cannot_batch"


def test_read_only_key_cannot_write(control, store, woo):
    # given
    control.config(KIND, store, key_permissions="read")
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    response = woo.basic(
        "POST",
        "/products/batch",
        json_body={"update": [{"id": product_id(control, store, "SKU-1"), "regular_price": "6.00"}]},
    )

    # then
    assert response.status_code == 401
    assert response.json()["message"] == "The API key provided does not have write permissions."
    assert control.item(KIND, store, "SKU-1")["price"] == "5.00"


# --- products, pagination, batches -----------------------------------------------------------


def test_products_list_is_paginated_with_total_headers_and_link(control, store, woo):
    # given
    for index in range(25):
        control.put_item(KIND, store, f"SKU-{index:02d}", price="1.00", available=1)

    # when
    response = woo.basic("GET", "/products", params={"per_page": 10, "page": 2, "orderby": "id", "order": "asc"})

    # then
    assert response.status_code == 200
    assert response.headers["X-WP-Total"] == "25"
    assert response.headers["X-WP-TotalPages"] == "3"
    assert [product["sku"] for product in response.json()] == [f"SKU-{index:02d}" for index in range(10, 20)]
    links = response.headers["Link"]
    assert 'page=1>; rel="prev"' in links and 'page=3>; rel="next"' in links
    assert "per_page=10" in links and "consumer" not in links


def test_products_list_has_ten_per_page_by_default_and_refuses_more_than_a_hundred(control, store, woo):
    # given
    for index in range(12):
        control.put_item(KIND, store, f"SKU-{index:02d}", price="1.00", available=1)

    # when
    default_page = woo.basic("GET", "/products")
    too_many = woo.basic("GET", "/products", params={"per_page": 101})

    # then
    assert len(default_page.json()) == 10
    assert default_page.headers["X-WP-TotalPages"] == "2"
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "rest_invalid_param"
    assert too_many.json()["data"]["params"] == {
        "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"
    }


def test_batch_of_more_than_one_hundred_items_is_refused_with_413_and_changes_nothing(control, store, woo):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    first = product_id(control, store, "SKU-1")
    updates = [{"id": first, "regular_price": "9.00"}] * 60

    # when
    response = woo.signed("POST", "/products/batch", json_body={"update": updates, "delete": [999999] * 41})

    # then
    assert response.status_code == 413
    assert response.json() == {
        "code": "woocommerce_rest_request_entity_too_large",
        "message": "Unable to accept more than 100 items for this request.",
        "data": {"status": 413},
    }
    assert control.item(KIND, store, "SKU-1")["price"] == "5.00"


def test_batch_update_answers_each_item_and_a_failed_one_does_not_stop_the_others(control, store, woo):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    control.put_item(KIND, store, "SKU-2", price="6.00", available=2)
    first, second = product_id(control, store, "SKU-1"), product_id(control, store, "SKU-2")

    # when
    response = woo.signed(
        "POST",
        "/products/batch",
        json_body={
            "update": [
                {"id": first, "regular_price": "7.25", "stock_quantity": 9},
                {"id": 987654, "regular_price": "1.00"},
                {"id": second, "sku": "SKU-1"},  # taken by the first product
            ]
        },
    )

    # then
    assert response.status_code == 200
    updated, unknown, duplicate = response.json()["update"]
    assert (updated["id"], updated["regular_price"], updated["price"], updated["stock_quantity"]) == (
        first,
        "7.25",
        "7.25",
        9,
    )
    assert unknown == {
        "id": 987654,
        "error": {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.", "data": {"status": 400}},
    }
    assert duplicate["error"]["code"] == "product_invalid_sku"
    assert duplicate["error"]["data"]["resource_id"] == first
    assert (control.item(KIND, store, "SKU-1")["price"], control.item(KIND, store, "SKU-1")["writes"]) == ("7.25", 1)
    assert control.item(KIND, store, "SKU-2")["writes"] == 0
    assert "create" not in response.json() and "delete" not in response.json()


def test_stock_quantity_applies_only_when_stock_is_managed_and_status_follows_it(control, store, woo):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=3)
    first = product_id(control, store, "SKU-1")

    # when
    to_zero = woo.basic("PUT", f"/products/{first}", json_body={"stock_quantity": 0, "stock_status": "instock"})
    unmanaged = woo.basic("PUT", f"/products/{first}", json_body={"manage_stock": False, "stock_quantity": 40})

    # then
    assert to_zero.status_code == 200
    assert (to_zero.json()["stock_quantity"], to_zero.json()["stock_status"]) == (0, "outofstock")
    assert unmanaged.status_code == 200
    assert (unmanaged.json()["manage_stock"], unmanaged.json()["stock_quantity"]) == (False, None)
    assert control.item(KIND, store, "SKU-1")["available"] is None


def test_single_product_write_is_checked_against_the_schema(control, store, woo):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    response = woo.basic(
        "PUT",
        f"/products/{product_id(control, store, 'SKU-1')}",
        json_body={"regular_price": 6.5, "stock_quantity": "lots"},
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "rest_invalid_param"
    assert response.json()["data"]["params"] == {
        "regular_price": "regular_price is not of type string.",
        "stock_quantity": "stock_quantity is not of type integer.",
    }
    assert control.item(KIND, store, "SKU-1")["price"] == "5.00"


def test_unknown_product_id_is_invalid_id_on_read_and_update(store, woo):
    # when
    read = woo.basic("GET", "/products/424242")
    update = woo.basic("PUT", "/products/424242", json_body={"regular_price": "1.00"})

    # then
    assert (read.status_code, read.json()["code"]) == (404, "woocommerce_rest_product_invalid_id")
    assert (update.status_code, update.json()["code"]) == (400, "woocommerce_rest_product_invalid_id")


def test_variation_is_found_by_sku_and_updated_through_its_parents_batch(control, store, woo):
    # given
    control.put_item(KIND, store, "TEE-RED-M", price="20.00", available=5, parent_sku="TEE")
    control.put_item(KIND, store, "TEE-RED-L", price="20.00", available=5, parent_sku="TEE")

    # when
    found = woo.basic("GET", "/products", params={"sku": "TEE-RED-M"}).json()
    variation = found[0]
    response = woo.signed(
        "POST",
        f"/products/{variation['parent_id']}/variations/batch",
        json_body={"update": [{"id": variation["id"], "regular_price": "18.00", "stock_quantity": 2}, {"id": 31337}]},
    )

    # then
    assert (variation["type"], variation["parent_id"]) == ("variation", product_id(control, store, "TEE"))
    assert response.status_code == 200
    updated, unknown = response.json()["update"]
    assert (updated["sku"], updated["regular_price"], updated["stock_quantity"], updated["parent_id"]) == (
        "TEE-RED-M",
        "18.00",
        2,
        variation["parent_id"],
    )
    assert unknown["error"]["code"] == "woocommerce_rest_product_variation_invalid_id"
    listed = woo.basic("GET", f"/products/{variation['parent_id']}/variations")
    assert listed.headers["X-WP-Total"] == "2"
    assert control.item(KIND, store, "TEE-RED-M")["price"] == "18.00"
    # A variation is not edited through the products route.
    refused = woo.basic("PUT", f"/products/{variation['id']}", json_body={"regular_price": "1.00"})
    assert (refused.status_code, refused.json()["code"]) == (404, "woocommerce_rest_invalid_product_id")


def test_unknown_route_is_rest_no_route(store, woo):
    # when
    response = woo.basic("GET", "/widgets")

    # then
    assert response.status_code == 404
    assert response.json()["code"] == "rest_no_route"


# --- host throttling --------------------------------------------------------------------------


def test_host_rate_limit_answers_429_with_retry_after(control, store, woo):
    # given
    control.config(KIND, store, host_rate_limit_per_s=1, host_rate_limit_burst=2)

    # when
    statuses = [woo.basic("GET", "/products") for _ in range(3)]

    # then
    assert [response.status_code for response in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert control.requests(KIND, store)[-1]["status"] == 429


# --- sales and the order webhook --------------------------------------------------------------


def test_sale_lowers_stock_and_posts_a_signed_order_created_webhook(control, store, woo, receiver):
    # given
    control.config(KIND, store, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, webhook_id=7)
    control.put_item(KIND, store, "SKU-1", price="12.50", available=5, title="Blue mug")
    woo.basic("GET", "/products")  # the store learns the URL it is served at (its home_url)

    # when
    sale = control.sales(KIND, store, sku="SKU-1", quantity=2, deliveries=2)

    # then
    deliveries = receiver.take(2)
    (headers, body), (second_headers, second_body) = deliveries
    expected_signature = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert headers["X-WC-Webhook-Signature"] == expected_signature
    assert (headers["X-WC-Webhook-Topic"], headers["X-WC-Webhook-Resource"], headers["X-WC-Webhook-Event"]) == (
        "order.created",
        "order",
        "created",
    )
    assert headers["X-WC-Webhook-ID"] == "7"
    assert headers["X-WC-Webhook-Source"].endswith(f"/woocommerce/{store}/")
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("WooCommerce/")
    assert headers["X-WC-Webhook-Delivery-ID"] != second_headers["X-WC-Webhook-Delivery-ID"]
    assert second_body == body  # a redelivery carries the same order
    assert b"\\/wp-json\\/wc\\/v3\\/orders" in body  # wp_json_encode escapes slashes
    order = json.loads(body)
    sample = json.loads(SAMPLE_ORDER.read_text())
    assert set(sample) <= set(order)
    assert set(sample["line_items"][0]) <= set(order["line_items"][0])
    line = order["line_items"][0]
    assert (line["sku"], line["quantity"], line["variation_id"], line["total"]) == ("SKU-1", 2, 0, "25.00")
    assert order["id"] == sale["order"]["id"] and order["status"] == "processing"
    assert control.item(KIND, store, "SKU-1")["available"] == 3
    recorded = wait_until(
        lambda: [
            d
            for d in control.session.get(f"{control.base_url}/_sandbox/{KIND}/{store}/orders").json()["orders"][0][
                "deliveries"
            ]
            if d["status"] == "delivered"
        ],
        message="both deliveries recorded as delivered",
    )
    assert len(recorded) == 2 and {d["http_status"] for d in recorded} == {200}


def test_sale_of_a_variation_names_parent_and_variation_and_can_be_order_updated(control, store, receiver):
    # given
    control.config(KIND, store, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    control.put_item(KIND, store, "TEE-M", price="20.00", available=1, parent_sku="TEE")

    # when
    control.sales(KIND, store, sku="TEE-M", quantity=1, order_id=5001, topic="order.updated")

    # then
    ((headers, body),) = receiver.take(1)
    assert headers["X-WC-Webhook-Topic"] == "order.updated"
    line = json.loads(body)["line_items"][0]
    assert (line["product_id"], line["variation_id"]) == (
        product_id(control, store, "TEE"),
        product_id(control, store, "TEE-M"),
    )
    assert json.loads(body)["id"] == 5001
    assert control.item(KIND, store, "TEE-M")["stock_status"] == "outofstock"


def test_sale_is_refused_when_stock_is_short_or_no_webhook_url_is_configured(control, store, receiver):
    # given
    control.put_item(KIND, store, "SKU-1", price="1.00", available=1)

    # when
    with pytest.raises(SandboxControlError) as no_url:
        control.sales(KIND, store, sku="SKU-1", quantity=1)
    control.config(KIND, store, webhook_url=receiver.url)
    with pytest.raises(SandboxControlError) as short:
        control.sales(KIND, store, sku="SKU-1", quantity=2)

    # then
    assert no_url.value.status == 409 and "webhook_url" in no_url.value.body
    assert short.value.status == 409
    assert control.item(KIND, store, "SKU-1")["available"] == 1
