"""The Magento 2.4 REST emulator, over real HTTP against a sandbox subprocess."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.support.sandbox import (
    SandboxControl,
    SandboxControlError,
    SandboxProcess,
    wait_until,
)

KIND = "magento"
ADMIN = {"username": "admin", "password": "admin-password-1"}
UNAUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Catalog::products"},
}



@pytest.fixture
def store(control: SandboxControl) -> str:
    name = f"mage-{uuid.uuid4().hex[:8]}"
    control.config(
        KIND, name, admin_username=ADMIN["username"], admin_password=ADMIN["password"], store_codes=["fr_fr"]
    )
    return name


class Magento:
    """A minimal Magento REST client for one store."""

    def __init__(self, sandbox: SandboxProcess, store: str) -> None:
        self.base = f"{sandbox.url}/magento/{store}/rest"
        self.token: str | None = None

    def login(self) -> Magento:
        response = requests.post(f"{self.base}/V1/integration/admin/token", json=ADMIN, timeout=10)
        assert response.status_code == 200, response.text
        self.token = response.json()
        return self

    def call(
        self,
        method: str,
        path: str,
        *,
        code: str = "all",
        json: Any = None,
        params: Any = None,
        token: str | None = None,
    ) -> requests.Response:
        bearer = token or self.token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        prefix = f"{self.base}/{code}" if code else self.base
        return requests.request(method, f"{prefix}{path}", json=json, params=params, headers=headers, timeout=10)


@pytest.fixture
def magento(sandbox: SandboxProcess, store: str) -> Magento:
    return Magento(sandbox, store).login()


def criteria(
    field: str,
    value: str,
    condition: str,
    *,
    sort: tuple[str, str] | None = None,
    page_size: int | None = None,
    page: int | None = None,
) -> dict[str, Any]:
    """`searchCriteria` query parameters: one filter, and optionally a sort and a page (camelCase
    page keys, as Magento accepts both spellings)."""
    params: dict[str, Any] = {
        "searchCriteria[filter_groups][0][filters][0][field]": field,
        "searchCriteria[filter_groups][0][filters][0][value]": value,
        "searchCriteria[filter_groups][0][filters][0][condition_type]": condition,
    }
    if sort is not None:
        params["searchCriteria[sort_orders][0][field]"], params["searchCriteria[sort_orders][0][direction]"] = sort
    if page_size is not None:
        params["searchCriteria[pageSize]"] = page_size
    if page is not None:
        params["searchCriteria[currentPage]"] = page
    return params


# --- tokens -----------------------------------------------------------------------------------


def test_admin_token_is_issued_for_the_configured_credentials_and_refused_otherwise(sandbox, store):
    # when
    issued = requests.post(
        f"{sandbox.url}/magento/{store}/rest/default/V1/integration/admin/token", json=ADMIN, timeout=10
    )
    refused = requests.post(
        f"{sandbox.url}/magento/{store}/rest/V1/integration/admin/token", json={**ADMIN, "password": "nope"}, timeout=10
    )

    # then
    assert issued.status_code == 200
    assert isinstance(issued.json(), str) and issued.json().count(".") == 2  # a JWT, as since 2.4.4
    assert refused.status_code == 401
    assert refused.json()["message"].startswith("The account sign-in was incorrect")


def test_missing_or_wrong_bearer_gets_401_naming_the_acl_resource(sandbox, store, magento):
    # when
    missing = requests.post(f"{magento.base}/all/V1/products/base-prices", json={"prices": []}, timeout=10)
    wrong = magento.call("POST", "/V1/products/base-prices", json={"prices": []}, token="not-a-token")

    # then
    assert (missing.status_code, missing.json()) == (401, UNAUTHORIZED)
    assert (wrong.status_code, wrong.json()) == (401, UNAUTHORIZED)


def test_admin_token_expires_after_its_configured_lifetime(control, sandbox, store):
    # given
    control.config(KIND, store, admin_token_lifetime_s=1)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    client = Magento(sandbox, store).login()
    assert client.call("GET", "/V1/products/SKU-1").status_code == 200

    # when
    # (a list around the response: a 401 Response is falsy)
    (expired,) = wait_until(
        lambda: [response] if (response := client.call("GET", "/V1/products/SKU-1")).status_code == 401 else None,
        timeout=5,
        message="the admin token never expired",
    )

    # then
    assert expired.json() == UNAUTHORIZED
    assert control.requests(KIND, store)[-1]["token"] == "expired"


def test_integration_token_works_until_it_is_changed(control, sandbox, store):
    # given
    control.config(KIND, store, integration_token="integration-token-1")
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    client = Magento(sandbox, store)

    # when
    before = client.call("GET", "/V1/products/SKU-1", token="integration-token-1")
    control.config(KIND, store, integration_token="integration-token-2")
    after = client.call("GET", "/V1/products/SKU-1", token="integration-token-1")

    # then
    assert before.status_code == 200
    assert after.status_code == 401


# --- prices -----------------------------------------------------------------------------------


def test_base_prices_answer_an_empty_list_when_every_row_applies(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    control.put_item(KIND, store, "SKU-2", price="6.00", available=1)

    # when
    response = magento.call(
        "POST",
        "/V1/products/base-prices",
        json={
            "prices": [{"sku": "SKU-1", "price": 7.5, "store_id": 0}, {"sku": "SKU-2", "price": "8.25", "store_id": 0}]
        },
    )

    # then
    assert (response.status_code, response.json()) == (200, [])
    assert control.item(KIND, store, "SKU-1")["price"] == "7.50"
    assert (control.item(KIND, store, "SKU-2")["price"], control.item(KIND, store, "SKU-2")["writes"]) == ("8.25", 1)


def test_base_prices_list_failed_rows_and_still_apply_the_valid_ones(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    control.put_item(KIND, store, "SKU-2", price="6.00", available=1)

    # when
    response = magento.call(
        "POST",
        "/V1/products/base-prices",
        json={
            "prices": [
                {"sku": "SKU-1", "price": 9.99, "store_id": 0},
                {"sku": "GHOST", "price": 1, "store_id": 0},
                {"sku": "SKU-2", "price": -3, "store_id": 0},
                {"sku": "SKU-2", "price": 4, "store_id": 77},
            ]
        },
    )

    # then
    assert response.status_code == 200
    assert response.json() == [
        {"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", "GHOST"]},
        {"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["Price", "-3"]},
        {"message": "Requested store is not found. Row ID: SKU = SKU-2, Store ID: 77.", "parameters": ["SKU-2", "77"]},
    ]
    assert control.item(KIND, store, "SKU-1")["price"] == "9.99"
    assert (control.item(KIND, store, "SKU-2")["price"], control.item(KIND, store, "SKU-2")["writes"]) == ("6.00", 0)


def test_base_prices_information_reads_prices_and_refuses_unknown_skus(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.50", available=1)

    # when
    found = magento.call("POST", "/V1/products/base-prices-information", json={"skus": ["SKU-1"]})
    unknown = magento.call("POST", "/V1/products/base-prices-information", json={"skus": ["SKU-1", "GHOST"]})

    # then
    assert found.json() == [{"price": 5.5, "store_id": 0, "sku": "SKU-1"}]
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Requested product doesn't exist: %sku", "parameters": {"sku": "GHOST"}}


def test_request_bodies_are_checked_against_the_service_interfaces(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    wrong_type = magento.call(
        "POST", "/V1/products/base-prices", json={"prices": [{"sku": "SKU-1", "price": "cheap", "store_id": 0}]}
    )
    unknown_field = magento.call(
        "POST", "/V1/products/base-prices", json={"prices": [{"sku": "SKU-1", "value": 4, "store_id": 0}]}
    )
    missing = magento.call("POST", "/V1/products/base-prices", json={"price": []})

    # then
    assert wrong_type.status_code == 400
    assert wrong_type.json()["message"] == (
        'Error occurred during "price" processing. The "cheap" value\'s type is invalid.'
        ' The "float" type was expected. Verify and try again.'
    )
    assert unknown_field.status_code == 400
    assert 'Property "value" does not have accessor method "getValue"' in unknown_field.json()["message"]
    assert missing.json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "prices"},
    }
    assert control.item(KIND, store, "SKU-1")["price"] == "5.00"


# --- store codes ------------------------------------------------------------------------------


def test_unknown_store_code_matches_no_route(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    unknown = magento.call("GET", "/V1/products/SKU-1", code="de_de")
    configured = magento.call("GET", "/V1/products/SKU-1", code="fr_fr")
    no_code = magento.call("GET", "/V1/products/SKU-1", code="")

    # then
    assert (unknown.status_code, unknown.json()) == (404, {"message": "Request does not match any route."})
    assert configured.status_code == 200
    assert no_code.status_code == 200


def test_website_price_scope_keeps_a_store_views_price_apart_from_the_global_one(control, store, magento):
    # given
    control.config(KIND, store, price_scope="website")
    control.put_item(KIND, store, "SKU-1", price="10.00", available=1)

    # when
    saved = magento.call("PUT", "/V1/products/SKU-1", code="fr_fr", json={"product": {"sku": "SKU-1", "price": 12}})
    in_france = magento.call("GET", "/V1/products/SKU-1", code="fr_fr").json()
    in_default = magento.call("GET", "/V1/products/SKU-1", code="default").json()

    # then
    assert saved.status_code == 200
    assert (in_france["price"], in_default["price"]) == (12, 10)
    item = control.item(KIND, store, "SKU-1")
    assert item["price"] == "10.00" and item["store_prices"] == {"0": "10.00", "2": "12.00"}


def test_global_price_scope_makes_every_store_code_write_the_global_price(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="10.00", available=1)

    # when
    magento.call("PUT", "/V1/products/SKU-1", code="default", json={"product": {"sku": "SKU-1", "price": 11.5}})

    # then
    assert control.item(KIND, store, "SKU-1")["price"] == "11.50"
    assert magento.call("GET", "/V1/products/SKU-1", code="all").json()["price"] == 11.5


# --- inventory --------------------------------------------------------------------------------


def test_source_items_are_saved_and_found_by_sku_search_criteria(control, store, magento):
    # given
    for sku in ("SKU-1", "SKU-2", "SKU-3"):
        control.put_item(KIND, store, sku, price="1.00", available=1)

    # when
    saved = magento.call(
        "POST",
        "/V1/inventory/source-items",
        json={
            "sourceItems": [
                {"sku": "SKU-1", "source_code": "default", "quantity": 11, "status": 1},
                {"sku": "SKU-2", "source_code": "default", "quantity": 0, "status": 0},
            ]
        },
    )
    found = magento.call("GET", "/V1/inventory/source-items", params=criteria("sku", "SKU-1,SKU-2", "in"))

    # then
    assert (saved.status_code, saved.json()) == (200, [])
    body = found.json()
    assert body["total_count"] == 2
    assert sorted(body["items"], key=lambda item: item["sku"]) == [
        {"sku": "SKU-1", "source_code": "default", "quantity": 11, "status": 1},
        {"sku": "SKU-2", "source_code": "default", "quantity": 0, "status": 0},
    ]
    assert body["search_criteria"]["filter_groups"] == [
        {"filters": [{"field": "sku", "value": "SKU-1,SKU-2", "condition_type": "in"}]}
    ]
    assert control.item(KIND, store, "SKU-1")["available"] == 11
    assert control.item(KIND, store, "SKU-3")["writes"] == 0


def test_source_items_are_validated_all_or_nothing(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="1.00", available=5)

    # when
    response = magento.call(
        "POST",
        "/V1/inventory/source-items",
        json={
            "sourceItems": [
                {"sku": "SKU-1", "source_code": "default", "quantity": 9, "status": 1},
                {"sku": "SKU-1", "source_code": "default", "quantity": 0, "status": 1},
            ]
        },
    )

    # then
    assert response.status_code == 400
    assert response.json()["message"] == "Validation Failed"
    assert (
        response.json()["errors"][0]["message"]
        == 'Product cannot have "%status" "%in_stock" while product "%quantity" equals or below zero'
    )
    assert control.item(KIND, store, "SKU-1")["available"] == 5


def test_search_criteria_pages_and_a_page_past_the_end_repeats_the_last(control, store, magento):
    # given
    for index in range(5):
        control.put_item(KIND, store, f"SKU-{index}", price="1.00", available=index + 1)

    # when
    second = magento.call(
        "GET",
        "/V1/inventory/source-items",
        params=criteria("quantity", "1", "gteq", sort=("sku", "DESC"), page_size=2, page=2),
    )
    past_end = magento.call(
        "GET",
        "/V1/inventory/source-items",
        params=criteria("quantity", "1", "gteq", sort=("sku", "DESC"), page_size=2, page=9),
    )

    # then
    assert [item["sku"] for item in second.json()["items"]] == ["SKU-2", "SKU-1"]
    assert second.json()["total_count"] == 5
    assert [item["sku"] for item in past_end.json()["items"]] == ["SKU-0"]


def test_search_without_search_criteria_is_refused(store, magento):
    # when
    response = magento.call("GET", "/V1/inventory/source-items")

    # then
    assert response.status_code == 400
    assert response.json()["parameters"] == {"fieldName": "searchCriteria"}


# --- orders -----------------------------------------------------------------------------------


def test_sale_lowers_the_source_and_its_order_is_listed_by_updated_at(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="12.00", available=5, title="Blue mug")
    before = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 2))

    # when
    sale = control.sales(KIND, store, sku="SKU-1", quantity=2, order_id="100000042")
    listed = magento.call(
        "GET",
        "/V1/orders",
        params=criteria("updated_at", before, "gteq", sort=("updated_at", "ASC")),
    )
    later = magento.call("GET", "/V1/orders", params=criteria("updated_at", "2999-01-01 00:00:00", "gteq"))

    # then
    assert sale["order"]["increment_id"] == "100000042"
    body = listed.json()
    assert body["total_count"] == 1
    (order,) = body["items"]
    assert order["increment_id"] == "100000042"
    assert [(item["sku"], item["qty_ordered"], item["price"]) for item in order["items"]] == [("SKU-1", 2, 12)]
    assert order["extension_attributes"]["shipping_assignments"][0]["items"][0]["sku"] == "SKU-1"
    assert later.json()["total_count"] == 0
    assert control.item(KIND, store, "SKU-1")["available"] == 3


def test_sale_is_refused_when_the_source_is_short(control, store):
    # given
    control.put_item(KIND, store, "SKU-1", price="1.00", available=1)

    # when
    with pytest.raises(SandboxControlError) as refused:
        control.sales(KIND, store, sku="SKU-1", quantity=2)

    # then
    assert refused.value.status == 409
    assert control.item(KIND, store, "SKU-1")["available"] == 1


# --- async bulk -------------------------------------------------------------------------------


def finished_operations(magento: Magento, status_path: str) -> list[dict[str, Any]] | None:
    """The bulk's operations once none is open (status 4) any more, else None."""
    operations: list[dict[str, Any]] = magento.call("GET", status_path).json()["operations_list"]
    return operations if all(operation["status"] != 4 for operation in operations) else None


def test_async_bulk_base_prices_is_accepted_then_completes(control, store, magento):
    # given
    control.config(KIND, store, bulk_delay_ms=100)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    control.put_item(KIND, store, "SKU-2", price="6.00", available=1)

    # when
    accepted = magento.call(
        "POST",
        "/async/bulk/V1/products/base-prices",
        json=[
            {"prices": [{"sku": "SKU-1", "price": 7, "store_id": 0}]},
            {"prices": [{"sku": "SKU-2", "price": 8, "store_id": 0}]},
        ],
    )

    # then
    assert accepted.status_code == 202
    answer = accepted.json()
    assert answer["errors"] is False
    assert answer["request_items"] == [
        {"id": 0, "data_hash": None, "status": "accepted"},
        {"id": 1, "data_hash": None, "status": "accepted"},
    ]
    status_path = f"/V1/bulk/{answer['bulk_uuid']}/detailed-status"
    operations = wait_until(lambda: finished_operations(magento, status_path), message="the bulk operations never ran")
    assert [op["status"] for op in operations] == [1, 1]
    assert operations[0]["topic_name"] == "async.magento.catalog.api.basepricestorageinterface.update.post"
    assert magento.call("GET", status_path).json()["operation_count"] == 2
    assert (control.item(KIND, store, "SKU-1")["price"], control.item(KIND, store, "SKU-2")["price"]) == (
        "7.00",
        "8.00",
    )


def test_async_bulk_operation_that_fails_validation_needs_a_change(control, store, magento):
    # given
    control.config(KIND, store, bulk_delay_ms=0)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=4)

    # when
    accepted = magento.call(
        "POST",
        "/async/bulk/V1/inventory/source-items",
        json=[
            {"sourceItems": [{"sku": "SKU-1", "source_code": "default", "quantity": 0, "status": 1}]},
            {"sourceItems": [{"sku": "SKU-1", "source_code": "default", "quantity": 3, "status": 1}]},
        ],
    )

    # then
    status_path = f"/V1/bulk/{accepted.json()['bulk_uuid']}/detailed-status"
    operations = wait_until(lambda: finished_operations(magento, status_path), message="the bulk operations never ran")
    assert [(op["status"], op["result_message"]) for op in operations] == [(3, "Validation Failed"), (1, "")]
    assert control.item(KIND, store, "SKU-1")["available"] == 3


def test_async_bulk_refuses_the_whole_request_when_a_body_is_malformed(control, store, magento):
    # given
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)

    # when
    response = magento.call(
        "POST",
        "/async/bulk/V1/products/base-prices",
        json=[
            {"prices": [{"sku": "SKU-1", "price": 7, "store_id": 0}]},
            {"prices": [{"sku": "SKU-1", "price": "x", "store_id": 0}]},
        ],
    )

    # then
    assert response.status_code == 400
    assert control.item(KIND, store, "SKU-1")["price"] == "5.00"


def test_unknown_bulk_uuid_is_not_found(store, magento):
    # when
    response = magento.call("GET", f"/V1/bulk/{uuid.uuid4()}/detailed-status")

    # then
    assert response.status_code == 404
    assert response.json()["message"] == "Bulk uuid %bulkUuid not exist"


def test_unknown_route_does_not_match_any_route(store, magento):
    # when
    response = magento.call("GET", "/V1/widgets")

    # then
    assert (response.status_code, response.json()) == (404, {"message": "Request does not match any route."})
