"""The Shopify emulator, over real HTTP against a sandbox subprocess (no database needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests

from tests.support.reference import reference_file
from tests.support.sandbox import SandboxControl, SandboxProcess, wait_until

TOKEN = "shpat_sandbox_token"
WEBHOOK_SECRET = "shopify-webhook-secret"
VERSION = "2026-07"
ORDER_SAMPLE = reference_file("samples/shopify-orders-create.rest-example.json")
LEVEL_SAMPLE = reference_file("samples/shopify-inventory-levels-update.rest-example.json")

BULK_UPDATE = """
mutation UpdatePrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!, $partial: Boolean) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants, allowPartialUpdates: $partial) {
    productVariants { id sku price compareAtPrice }
    userErrors { code field message }
  }
}
"""
SET_QUANTITIES = """
mutation SetStock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange item { id } location { id } } }
    userErrors { code field message }
  }
}
"""
SET_QUANTITIES_WITHOUT_KEY = """
mutation SetStock($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}
"""
ADJUST_QUANTITIES = """
mutation AdjustStock($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""
VARIANTS_BY_SKU = """
query BySku($query: String!) {
  productVariants(first: 10, query: $query) {
    edges { cursor node { id sku price inventoryItem { id } } }
    nodes { sku }
    pageInfo { hasNextPage endCursor }
  }
}
"""
VARIANTS_BY_ID = """
query ById($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on ProductVariant {
      id sku price compareAtPrice
      product { id }
      inventoryItem {
        id
        inventoryLevels(first: 5) { nodes { location { id } quantities(names: ["available"]) { name quantity } } }
      }
    }
  }
}
"""


@pytest.fixture
def store() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


class Admin:
    """A bare GraphQL Admin API client for one emulated shop."""

    def __init__(self, sandbox: SandboxProcess, store: str) -> None:
        self.base = f"{sandbox.url}/shopify/{store}/admin/api"
        self.session = requests.Session()

    def post(
        self, query: str, variables: dict[str, Any] | None = None, *, version: str = VERSION, token: str | None = TOKEN
    ) -> requests.Response:
        headers = {"X-Shopify-Access-Token": token} if token is not None else {}
        return self.session.post(
            f"{self.base}/{version}/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=10,
        )

    def graphql(self, query: str, variables: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        response = self.post(query, variables, **options)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def admin(sandbox: SandboxProcess, store: str) -> Admin:
    return Admin(sandbox, store)


def seed(control: SandboxControl, store: str, sku: str, price: str = "10.00", available: int = 5) -> dict[str, Any]:
    return control.put_item("shopify", store, sku, price=price, available=available, title=f"Product {sku}")


def stock(item: dict[str, Any], quantity: int, **extra: Any) -> dict[str, Any]:
    return {
        "inventoryItemId": item["inventory_item_id"],
        "locationId": item["levels"][0]["location_id"],
        "quantity": quantity,
        **extra,
    }


def set_input(*quantities: dict[str, Any], name: str = "available") -> dict[str, Any]:
    return {
        "name": name,
        "reason": "correction",
        "referenceDocumentUri": "syncsvc://sandbox-test",
        "quantities": list(quantities),
    }


def shop_view(sandbox: SandboxProcess, store: str, resource: str) -> dict[str, Any]:
    """A Shopify store's own control view (`stats`, `deliveries`)."""
    response = requests.get(f"{sandbox.url}/_sandbox/shopify/{store}/{resource}", timeout=10)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def payload(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


# --- productVariantsBulkUpdate ------------------------------------------------------------------


def test_price_bulk_update_lands_and_counts_one_write_per_variant(control, admin, store):
    # given
    item = seed(control, store, "MUG-1")

    # when
    body = admin.graphql(
        BULK_UPDATE,
        {
            "productId": item["product_id"],
            "variants": [{"id": item["variant_id"], "price": "12.5", "compareAtPrice": "15"}],
        },
    )

    # then
    result = payload(body, "productVariantsBulkUpdate")
    assert result["userErrors"] == []
    assert result["productVariants"] == [
        {"id": item["variant_id"], "sku": "MUG-1", "price": "12.50", "compareAtPrice": "15.00"}
    ]
    shown = control.item("shopify", store, "MUG-1")
    assert (shown["price"], shown["compare_at_price"], shown["writes"]) == ("12.50", "15.00", 1)


def test_seeded_skus_with_one_product_handle_are_variants_of_one_product_updated_in_one_call(control, admin, store):
    # given: three sizes seeded as one product (by handle), and a SKU of a product of its own
    sizes = [
        control.put_item("shopify", store, f"TEE-{size}", price="10.00", title="Tee", product="tee")
        for size in ("S", "M", "L")
    ]
    single = seed(control, store, "MUG-1")

    # when: one call sets all three sizes' prices
    body = admin.graphql(
        BULK_UPDATE,
        {"productId": sizes[0]["product_id"], "variants": [{"id": item["variant_id"], "price": "12"} for item in sizes]},
    )

    # then: they share the product, each is updated; the other SKU stayed a product apart
    assert payload(body, "productVariantsBulkUpdate")["userErrors"] == []
    assert len({item["product_id"] for item in sizes}) == 1 and single["product_id"] != sizes[0]["product_id"]
    assert [control.item("shopify", store, f"TEE-{size}")["price"] for size in ("S", "M", "L")] == ["12.00"] * 3


def test_bulk_update_reports_per_variant_user_errors_and_applies_nothing_by_default(control, admin, store):
    # given
    mug = seed(control, store, "MUG-1")
    other = seed(control, store, "CUP-1")

    # when: a negative price, a variant of another product, and one that does not exist
    body = admin.graphql(
        BULK_UPDATE,
        {
            "productId": mug["product_id"],
            "variants": [
                {"id": mug["variant_id"], "price": "-1.00"},
                {"id": other["variant_id"], "price": "3.00"},
                {"id": "gid://shopify/ProductVariant/1", "price": "3.00"},
            ],
        },
    )

    # then
    result = payload(body, "productVariantsBulkUpdate")
    assert result["productVariants"] is None
    assert [(error["code"], error["field"]) for error in result["userErrors"]] == [
        ("NEGATIVE_PRICE_VALUE", ["variants", "0", "price"]),
        ("MUST_BE_FOR_THIS_PRODUCT", ["variants", "1", "id"]),
        ("PRODUCT_VARIANT_DOES_NOT_EXIST", ["variants", "2", "id"]),
    ]
    assert control.item("shopify", store, "MUG-1")["price"] == "10.00"
    assert control.item("shopify", store, "MUG-1")["writes"] == 0


def test_bulk_update_with_partial_updates_applies_the_valid_variants(control, admin, store):
    # given
    mug = seed(control, store, "MUG-1")

    # when
    body = admin.graphql(
        BULK_UPDATE,
        {
            "productId": mug["product_id"],
            "variants": [
                {"id": mug["variant_id"], "price": "8.00"},
                {"id": "gid://shopify/ProductVariant/1", "price": "3.00"},
            ],
            "partial": True,
        },
    )

    # then
    result = payload(body, "productVariantsBulkUpdate")
    assert [variant["sku"] for variant in result["productVariants"]] == ["MUG-1"]
    assert [error["code"] for error in result["userErrors"]] == ["PRODUCT_VARIANT_DOES_NOT_EXIST"]
    assert control.item("shopify", store, "MUG-1")["price"] == "8.00"


def test_bulk_update_of_an_unknown_product_answers_product_does_not_exist(admin):
    # when
    body = admin.graphql(BULK_UPDATE, {"productId": "gid://shopify/Product/1", "variants": []})

    # then
    assert payload(body, "productVariantsBulkUpdate")["userErrors"][0]["code"] == "PRODUCT_DOES_NOT_EXIST"


def test_more_than_250_variants_in_one_call_is_refused_whole(control, admin, store):
    # given
    mug = seed(control, store, "MUG-1")
    variants = [{"id": mug["variant_id"], "price": "1.00"}] * 251

    # when
    body = admin.graphql(BULK_UPDATE, {"productId": mug["product_id"], "variants": variants})

    # then
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert error["message"] == "The input array size of 251 is greater than the maximum allowed of 250."
    assert error["path"] == ["productVariantsBulkUpdate", "variants"]
    assert "data" not in body
    assert control.item("shopify", store, "MUG-1")["writes"] == 0


# --- inventorySetQuantities: compare-and-swap and idempotency ------------------------------------


def test_set_quantities_with_the_current_change_from_quantity_applies_and_counts_a_write(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when
    body = admin.graphql(
        SET_QUANTITIES, {"input": set_input(stock(item, 9, changeFromQuantity=5)), "key": str(uuid.uuid4())}
    )

    # then
    result = payload(body, "inventorySetQuantities")
    assert result["userErrors"] == []
    changes = {change["name"]: change for change in result["inventoryAdjustmentGroup"]["changes"]}
    assert (changes["available"]["delta"], changes["available"]["quantityAfterChange"]) == (4, 9)
    assert changes["available"]["item"]["id"] == item["inventory_item_id"]
    assert changes["available"]["location"]["id"] == item["levels"][0]["location_id"]
    assert changes["on_hand"]["delta"] == 4
    shown = control.item("shopify", store, "MUG-1")
    assert (shown["available"], shown["writes"]) == (9, 1)


def test_stale_change_from_quantity_answers_stale_and_applies_nothing_of_the_call(control, admin, store):
    # given: two items, the second one's stock moved since it was read
    fresh = seed(control, store, "MUG-1", available=5)
    moved = seed(control, store, "CUP-1", available=7)

    # when
    body = admin.graphql(
        SET_QUANTITIES,
        {
            "input": set_input(stock(fresh, 1, changeFromQuantity=5), stock(moved, 1, changeFromQuantity=6)),
            "key": str(uuid.uuid4()),
        },
    )

    # then: atomic, so the valid quantity was not applied either
    result = payload(body, "inventorySetQuantities")
    assert result["inventoryAdjustmentGroup"] is None
    assert result["userErrors"] == [
        {
            "code": "CHANGE_FROM_QUANTITY_STALE",
            "field": ["input", "quantities", "1", "changeFromQuantity"],
            "message": "The changeFromQuantity argument no longer matches the persisted quantity.",
        }
    ]
    assert control.item("shopify", store, "MUG-1")["available"] == 5
    assert control.item("shopify", store, "CUP-1")["available"] == 7
    assert control.item("shopify", store, "MUG-1")["writes"] == 0


def test_null_change_from_quantity_skips_the_check(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when
    body = admin.graphql(
        SET_QUANTITIES, {"input": set_input(stock(item, 2, changeFromQuantity=None)), "key": str(uuid.uuid4())}
    )

    # then
    assert payload(body, "inventorySetQuantities")["userErrors"] == []
    assert control.item("shopify", store, "MUG-1")["available"] == 2


def test_replayed_idempotency_key_returns_the_original_result_without_applying_again(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)
    request = {"input": set_input(stock(item, 9, changeFromQuantity=5)), "key": str(uuid.uuid4())}
    first = payload(admin.graphql(SET_QUANTITIES, request), "inventorySetQuantities")

    # when: the same request again, as a client retrying after a timeout would
    replay = payload(admin.graphql(SET_QUANTITIES, request), "inventorySetQuantities")

    # then: no stale error although the stock is now 9, the same group, one write
    assert replay == first
    assert replay["userErrors"] == []
    shown = control.item("shopify", store, "MUG-1")
    assert (shown["available"], shown["writes"]) == (9, 1)


def test_reused_idempotency_key_with_different_input_answers_parameter_mismatch(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)
    key = str(uuid.uuid4())
    admin.graphql(SET_QUANTITIES, {"input": set_input(stock(item, 9, changeFromQuantity=5)), "key": key})

    # when
    body = admin.graphql(SET_QUANTITIES, {"input": set_input(stock(item, 3, changeFromQuantity=9)), "key": key})

    # then
    result = payload(body, "inventorySetQuantities")
    assert result["inventoryAdjustmentGroup"] is None
    assert [error["code"] for error in result["userErrors"]] == ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"]
    assert control.item("shopify", store, "MUG-1")["available"] == 9


@pytest.mark.parametrize("version", ["2026-04", "2026-07", "2026-10"])
def test_from_2026_04_a_quantity_without_change_from_quantity_is_an_error(control, admin, store, version):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when
    body = admin.graphql(
        SET_QUANTITIES, {"input": set_input(stock(item, 9)), "key": str(uuid.uuid4())}, version=version
    )

    # then
    [error] = body["errors"]
    assert error["message"] == "InventoryQuantityInput must include the following argument: changeFromQuantity."
    assert error["extensions"]["code"] == "INVALID_FIELD_ARGUMENTS"
    assert body["data"] == {"inventorySetQuantities": None}
    assert control.item("shopify", store, "MUG-1")["available"] == 5


def test_from_2026_04_inventory_mutations_without_idempotent_are_an_error(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when
    body = admin.graphql(
        SET_QUANTITIES_WITHOUT_KEY, {"input": set_input(stock(item, 9, changeFromQuantity=5))}, version="2026-04"
    )

    # then
    [error] = body["errors"]
    assert error["message"] == "The @idempotent directive is required for this mutation but was not provided."
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["path"] == ["inventorySetQuantities"]
    assert control.item("shopify", store, "MUG-1")["available"] == 5


def test_2026_01_takes_the_mutation_without_idempotent_or_change_from_quantity(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when: the older compare fields, still honoured in 2026-01
    body = admin.graphql(
        SET_QUANTITIES_WITHOUT_KEY, {"input": set_input(stock(item, 9, compareQuantity=5))}, version="2026-01"
    )

    # then
    assert payload(body, "inventorySetQuantities")["userErrors"] == []
    assert control.item("shopify", store, "MUG-1")["available"] == 9


def test_2025_versions_check_compare_quantity_and_do_not_know_change_from_quantity(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)

    # when
    stale = admin.graphql(
        SET_QUANTITIES_WITHOUT_KEY, {"input": set_input(stock(item, 9, compareQuantity=4))}, version="2025-10"
    )
    unknown_field = admin.graphql(
        SET_QUANTITIES_WITHOUT_KEY, {"input": set_input(stock(item, 9, changeFromQuantity=5))}, version="2025-01"
    )

    # then
    assert [error["code"] for error in payload(stale, "inventorySetQuantities")["userErrors"]] == [
        "COMPARE_QUANTITY_STALE"
    ]
    [error] = unknown_field["errors"]
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert error["extensions"]["problems"] == [
        {
            "path": ["quantities", 0, "changeFromQuantity"],
            "explanation": "Field is not defined on InventoryQuantityInput",
        }
    ]
    assert control.item("shopify", store, "MUG-1")["available"] == 5


def test_2026_04_no_longer_knows_ignore_compare_quantity(control, admin, store):
    # given
    item = seed(control, store, "MUG-1")

    # when
    body = admin.graphql(
        SET_QUANTITIES,
        {"input": {**set_input(stock(item, 1, changeFromQuantity=None)), "ignoreCompareQuantity": True}, "key": "k"},
        version="2026-04",
    )

    # then
    assert body["errors"][0]["message"] == (
        "Variable $input of type InventorySetQuantitiesInput! was provided invalid value for ignoreCompareQuantity "
        "(Field is not defined on InventorySetQuantitiesInput)"
    )


# --- inventoryAdjustQuantities -------------------------------------------------------------------


def test_adjust_quantities_applies_deltas_and_guards_with_change_from_quantity(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", available=5)
    change = {"inventoryItemId": item["inventory_item_id"], "locationId": item["levels"][0]["location_id"]}

    # when
    applied = admin.graphql(
        ADJUST_QUANTITIES,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "changes": [{**change, "delta": -2, "changeFromQuantity": 5}],
            },
            "key": "a1",
        },
    )
    stale = admin.graphql(
        ADJUST_QUANTITIES,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "changes": [{**change, "delta": -2, "changeFromQuantity": 5}],
            },
            "key": "a2",
        },
    )
    missing = admin.graphql(
        ADJUST_QUANTITIES,
        {"input": {"name": "available", "reason": "correction", "changes": [{**change, "delta": 1}]}, "key": "a3"},
    )

    # then
    changes = payload(applied, "inventoryAdjustQuantities")["inventoryAdjustmentGroup"]["changes"]
    assert {"name": "available", "delta": -2, "quantityAfterChange": 3} in changes
    assert [error["code"] for error in payload(stale, "inventoryAdjustQuantities")["userErrors"]] == [
        "CHANGE_FROM_QUANTITY_STALE"
    ]
    assert (
        missing["errors"][0]["message"]
        == "InventoryChangeInput must include the following argument: changeFromQuantity."
    )
    shown = control.item("shopify", store, "MUG-1")
    assert (shown["available"], shown["writes"]) == (3, 1)


# --- reads ---------------------------------------------------------------------------------------


def test_reads_variants_by_sku_search_through_edges_nodes_and_page_info(control, admin, store):
    # given
    a = seed(control, store, "ABC", price="1.00")
    seed(control, store, "XYZ", price="2.00")
    d = seed(control, store, "DEF", price="3.00")

    # when
    body = admin.graphql(VARIANTS_BY_SKU, {"query": "sku:ABC OR sku:DEF"})

    # then
    found = body["data"]["productVariants"]
    assert [edge["node"]["sku"] for edge in found["edges"]] == ["ABC", "DEF"]
    assert [node["sku"] for node in found["nodes"]] == ["ABC", "DEF"]
    assert found["edges"][0]["node"] == {
        "id": a["variant_id"],
        "sku": "ABC",
        "price": "1.00",
        "inventoryItem": {"id": a["inventory_item_id"]},
    }
    assert found["edges"][1]["node"]["id"] == d["variant_id"]
    assert found["pageInfo"] == {"hasNextPage": False, "endCursor": found["edges"][1]["cursor"]}


def test_pages_through_variants_with_cursors(control, admin, store):
    # given
    for sku in ("A1", "A2", "A3"):
        seed(control, store, sku)
    query = """
    query($after: String) {
      productVariants(first: 2, after: $after) { nodes { sku } pageInfo { hasNextPage endCursor } }
    }
    """

    # when
    first_page = admin.graphql(query)["data"]["productVariants"]
    second_page = admin.graphql(query, {"after": first_page["pageInfo"]["endCursor"]})["data"]["productVariants"]

    # then
    assert [node["sku"] for node in first_page["nodes"]] == ["A1", "A2"]
    assert first_page["pageInfo"]["hasNextPage"] is True
    assert [node["sku"] for node in second_page["nodes"]] == ["A3"]
    assert second_page["pageInfo"]["hasNextPage"] is False


def test_reads_variants_and_levels_by_node_ids(control, admin, store):
    # given
    item = seed(control, store, "MUG-1", price="4.00", available=6)

    # when
    body = admin.graphql(VARIANTS_BY_ID, {"ids": [item["variant_id"], "gid://shopify/ProductVariant/1"]})

    # then
    assert body["data"]["nodes"] == [
        {
            "id": item["variant_id"],
            "sku": "MUG-1",
            "price": "4.00",
            "compareAtPrice": None,
            "product": {"id": item["product_id"]},
            "inventoryItem": {
                "id": item["inventory_item_id"],
                "inventoryLevels": {
                    "nodes": [
                        {
                            "location": {"id": item["levels"][0]["location_id"]},
                            "quantities": [{"name": "available", "quantity": 6}],
                        }
                    ]
                },
            },
        },
        None,
    ]


def test_locations_lists_the_primary_and_configured_locations(control, admin, store):
    # given
    control.config("shopify", store, locations=["Warehouse"])

    # when
    body = admin.graphql("{ locations(first: 5) { nodes { id name isPrimary } } }")

    # then
    nodes = body["data"]["locations"]["nodes"]
    assert [(node["name"], node["isPrimary"]) for node in nodes] == [("Shop location", True), ("Warehouse", False)]
    assert all(node["id"].startswith("gid://shopify/Location/") for node in nodes)


def test_merchant_edit_is_what_the_api_reads_next_and_is_not_a_write(control, admin, store):
    # given
    seed(control, store, "MUG-1", price="4.00", available=6)

    # when: drift, as a merchant editing in the Shopify admin
    edited = control.put_item("shopify", store, "MUG-1", price="5.55", available=2)

    # then
    node = admin.graphql(VARIANTS_BY_SKU, {"query": "sku:MUG-1"})["data"]["productVariants"]["nodes"]
    assert node == [{"sku": "MUG-1"}]
    levels = admin.graphql(VARIANTS_BY_ID, {"ids": [edited["variant_id"]]})["data"]["nodes"][0]
    assert levels["price"] == "5.55"
    assert levels["inventoryItem"]["inventoryLevels"]["nodes"][0]["quantities"] == [
        {"name": "available", "quantity": 2}
    ]
    assert edited["writes"] == 0


# --- cost and throttling -------------------------------------------------------------------------


def test_every_response_carries_requested_and_actual_cost_and_the_bucket(control, admin, store):
    # given
    seed(control, store, "ABC")

    # when: 2 + 10 x (variant 1 + inventoryItem 1) requested; 2 + 1 x 2 actually returned
    body = admin.graphql("{ productVariants(first: 10) { nodes { id inventoryItem { id } } } }")

    # then
    cost = body["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (22, 4)
    status = cost["throttleStatus"]
    assert (status["maximumAvailable"], status["restoreRate"]) == (2000.0, 100.0)
    assert 1996 <= status["currentlyAvailable"] <= 2000  # charged 22, refunded 18, refilling at 100/s


def test_mutation_costs_ten_plus_its_payload(control, admin, store):
    # given
    item = seed(control, store, "MUG-1")

    # when
    body = admin.graphql(
        BULK_UPDATE, {"productId": item["product_id"], "variants": [{"id": item["variant_id"], "price": "1.00"}]}
    )

    # then: 10 + productVariants (1) + userErrors (1) requested; no user errors came back
    assert body["extensions"]["cost"]["requestedQueryCost"] == 12
    assert body["extensions"]["cost"]["actualQueryCost"] == 11


@pytest.mark.parametrize(
    ("plan", "restore_rate"),
    [
        ("standard", 100.0),
        ("basic", 100.0),
        ("advanced", 200.0),
        ("shopify_plus", 1000.0),
        ("commerce_components", 2000.0),
    ],
)
def test_plan_sets_the_restore_rate(control, admin, store, plan, restore_rate):
    # given
    control.config("shopify", store, plan=plan)

    # when
    status = admin.graphql("{ __typename }")["extensions"]["cost"]["throttleStatus"]

    # then
    assert status["restoreRate"] == restore_rate


def test_hammering_expensive_queries_is_throttled_and_the_bucket_refills_at_the_restore_rate(
    sandbox, control, admin, store
):
    # given: a small, slow bucket; each query requests 2 + 50 = 52 points
    control.config("shopify", store, bucket_size=100, restore_rate=20)
    expensive = "{ productVariants(first: 50) { nodes { id } } }"

    # when
    answers = []
    for _ in range(200):
        answers.append(admin.graphql(expensive))
        if "errors" in answers[-1]:
            break

    # then
    throttled = answers[-1]
    assert throttled["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert "data" not in throttled
    cost = throttled["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (52, None)
    assert cost["throttleStatus"]["currentlyAvailable"] < 52
    assert shop_view(sandbox, store, "stats")["throttled"] == 1

    # then: it refills at 20 points/s (a free query reads the bucket without spending)
    def available() -> tuple[float, int]:
        return (
            time.monotonic(),
            admin.graphql("{ __typename }")["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
        )

    started_at, started_with = available()
    ended_at, ended_with = wait_until(lambda: (reading := available())[1] >= started_with + 30 and reading, timeout=10)
    rate = (ended_with - started_with) / (ended_at - started_at)
    assert 14 <= rate <= 26, rate


def test_query_costing_more_than_the_single_query_limit_answers_max_cost_exceeded(control, admin, store):
    # given
    seed(control, store, "ABC")
    huge = (
        "{ productVariants(first: 250) { nodes { id inventoryItem { inventoryLevels(first: 10) { nodes { id } } } } } }"
    )

    # when
    body = admin.graphql(huge)

    # then: 2 + 250 x (1 + 1 + 2 + 10) = 3502 > 1000; nothing ran, nothing was charged
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert (error["extensions"]["cost"], error["extensions"]["maxCost"]) == (3502, 1000)
    assert error["message"].startswith("Query cost is 3502, which exceeds the single query max cost limit (1000).")
    assert "data" not in body
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000


def test_query_costing_more_than_a_small_bucket_answers_max_cost_exceeded(control, admin, store):
    # given
    control.config("shopify", store, bucket_size=50)

    # when
    body = admin.graphql("{ productVariants(first: 60) { nodes { id } } }")

    # then
    assert body["errors"][0]["extensions"] | {"documentation": None} == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 62,
        "maxCost": 50,
        "documentation": None,
    }


def test_stats_count_calls_throttles_cost_refusals_and_points(sandbox, control, admin, store):
    # given
    control.config("shopify", store, bucket_size=30, restore_rate=0.001)

    # when: with no variants each query actually costs 2, the rest of what it requests is refunded
    admin.graphql("{ productVariants(first: 10) { nodes { id } } }")  # requests 12, 28 left after refund
    admin.graphql("{ productVariants(first: 25) { nodes { id } } }")  # requests 27, 26 left
    admin.graphql("{ productVariants(first: 28) { nodes { id } } }")  # requests 30 > 26: throttled
    admin.graphql("{ productVariants(first: 40) { nodes { id } } }")  # requests 42 > bucket: refused

    # then
    stats = shop_view(sandbox, store, "stats")
    assert {key: stats[key] for key in ("calls", "throttled", "max_cost_exceeded", "points_spent")} == {
        "calls": 4,
        "throttled": 1,
        "max_cost_exceeded": 1,
        "points_spent": 4,
    }
    assert stats["throttle_status"]["maximumAvailable"] == 30.0


# --- errors --------------------------------------------------------------------------------------


def test_unknown_field_answers_a_graphql_validation_error_and_runs_nothing(admin):
    # when
    body = admin.graphql("{ productVariants(first: 1) { nodes { id colour } } }")

    # then
    assert body["errors"] == [
        {
            "message": "Field 'colour' doesn't exist on type 'ProductVariant'",
            "locations": [{"line": 1, "column": 42}],
            "extensions": {"code": "undefinedField", "typeName": "ProductVariant", "fieldName": "colour"},
        }
    ]
    assert "data" not in body
    assert body["extensions"]["cost"]["actualQueryCost"] == 0


def test_unknown_argument_and_missing_required_argument_are_validation_errors(admin):
    # when
    unknown = admin.graphql('{ productVariants(first: 1, colour: "red") { nodes { id } } }')
    missing = admin.graphql("{ productVariant { id } }")

    # then
    assert unknown["errors"][0]["message"] == "Field 'productVariants' doesn't accept argument 'colour'"
    assert unknown["errors"][0]["extensions"]["code"] == "argumentNotAccepted"
    assert missing["errors"][0]["message"] == "Field 'productVariant' is missing required arguments: id"
    assert missing["errors"][0]["extensions"]["code"] == "missingRequiredArguments"


def test_root_field_the_sandbox_does_not_emulate_answers_a_clear_error(admin):
    # when
    body = admin.graphql("{ orders(first: 1) { nodes { id } } }")

    # then
    assert body["errors"][0]["extensions"]["code"] == "NOT_IMPLEMENTED_IN_SANDBOX"
    assert "QueryRoot.orders" in body["errors"][0]["message"]


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["missing", "empty", "wrong"])
def test_bad_token_answers_401_as_shopify_does(control, admin, store, token):
    # given
    control.config("shopify", store, access_token=TOKEN)

    # when
    response = admin.post("{ shop { id } }", token=token)

    # then
    assert response.status_code == 401
    assert response.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    assert admin.post("{ shop { id } }").status_code == 200


def test_any_non_empty_token_is_accepted_when_none_is_configured(admin):
    # when
    response = admin.post("{ shop { name } }", token="anything")

    # then
    assert response.status_code == 200
    assert response.headers["X-Shopify-API-Version"] == VERSION


@pytest.mark.parametrize("version", ["2024-10", "2026-13", "latest"])
def test_unknown_api_version_answers_404(admin, version):
    # when
    response = admin.post("{ shop { id } }", version=version)

    # then
    assert response.status_code == 404
    assert response.json() == {"errors": "Not Found"}


def test_request_without_a_query_answers_400(sandbox, store):
    # when
    response = requests.post(
        f"{sandbox.url}/shopify/{store}/admin/api/{VERSION}/graphql.json",
        json={},
        headers={"X-Shopify-Access-Token": TOKEN},
        timeout=10,
    )

    # then
    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


def test_config_rejects_an_unknown_plan_and_hides_the_token(sandbox, control, store):
    # when
    refused = requests.post(f"{sandbox.url}/_sandbox/shopify/{store}/config", json={"plan": "platinum"}, timeout=10)
    echoed = control.config("shopify", store, access_token=TOKEN, plan="advanced", send_orders_paid=True)

    # then
    assert refused.status_code == 400
    assert echoed == {"access_token": "***", "plan": "advanced", "send_orders_paid": True}


# --- sales and webhooks --------------------------------------------------------------------------


def test_sale_lowers_available_and_sends_a_signed_orders_create_webhook_redelivered_with_one_event_id(
    sandbox, control, store, receiver
):
    # given
    item = seed(control, store, "MUG-1", price="19.99", available=5)
    control.config("shopify", store, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)

    # when
    sale = control.sales("shopify", store, sku="MUG-1", quantity=2, deliveries=2)

    # then: stock dropped at once
    assert sale["available"] == 3
    assert control.item("shopify", store, "MUG-1")["available"] == 3
    # then: two deliveries of one event
    wait_until(lambda: len(receiver.received) == 2, message="two deliveries of orders/create")
    (first_headers, first_body), (second_headers, second_body) = receiver.received
    assert first_body == second_body
    expected = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), first_body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(first_headers["x-shopify-hmac-sha256"], expected)
    assert first_headers["x-shopify-topic"] == "orders/create"
    assert first_headers["x-shopify-shop-domain"] == f"{store}.myshopify.com"
    assert first_headers["x-shopify-api-version"] == "2026-07"
    assert first_headers["x-shopify-triggered-at"]
    assert first_headers["x-shopify-event-id"] == second_headers["x-shopify-event-id"]
    assert first_headers["x-shopify-webhook-id"] != second_headers["x-shopify-webhook-id"]
    assert first_headers["content-type"] == "application/json"
    # then: the body is an order shaped like Shopify's example
    order = json.loads(first_body)
    if ORDER_SAMPLE.exists():
        sample = json.loads(ORDER_SAMPLE.read_text())["order"]
        assert set(sample) <= set(order)
        assert set(sample["line_items"][0]) <= set(order["line_items"][0])
    [line] = order["line_items"]
    assert (line["sku"], line["quantity"], line["price"]) == ("MUG-1", 2, "19.99")
    assert line["variant_id"] == int(item["variant_id"].rsplit("/", 1)[1])
    assert line["product_id"] == int(item["product_id"].rsplit("/", 1)[1])
    assert order["id"] == sale["order_id"] and order["total_price"] == "39.98"
    # then: each delivery's status is on record
    deliveries = wait_until(lambda: len(found := shop_view(sandbox, store, "deliveries")["deliveries"]) == 2 and found)
    assert [(entry["topic"], entry["status"], entry["attempt"]) for entry in deliveries] == [
        ("orders/create", 200, 1),
        ("orders/create", 200, 2),
    ]


def test_sale_sends_orders_paid_and_inventory_level_update_when_configured(control, store, receiver):
    # given
    item = seed(control, store, "MUG-1", available=5)
    control.config(
        "shopify",
        store,
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        send_orders_paid=True,
        send_inventory_webhooks=True,
    )

    # when
    sale = control.sales("shopify", store, sku="MUG-1", quantity=1, order_id=450789469)

    # then
    wait_until(lambda: len(receiver.received) == 3, message="orders/create, orders/paid, inventory_levels/update")
    topics = [headers["x-shopify-topic"] for headers, _ in receiver.received]
    assert topics == ["orders/create", "orders/paid", "inventory_levels/update"]
    assert sale["order_id"] == 450789469
    assert len({headers["x-shopify-event-id"] for headers, _ in receiver.received}) == 3
    level = json.loads(receiver.received[2][1])
    if LEVEL_SAMPLE.exists():
        assert set(level) == set(json.loads(LEVEL_SAMPLE.read_text())["inventory_level"])
    assert level["available"] == 4
    assert level["inventory_item_id"] == int(item["inventory_item_id"].rsplit("/", 1)[1])


def test_api_write_sends_inventory_level_update_when_configured(control, admin, store, receiver):
    # given
    item = seed(control, store, "MUG-1", available=5)
    control.config("shopify", store, webhook_url=receiver.url, send_inventory_webhooks=True)

    # when
    admin.graphql(SET_QUANTITIES, {"input": set_input(stock(item, 8, changeFromQuantity=5)), "key": str(uuid.uuid4())})

    # then
    wait_until(lambda: len(receiver.received) == 1, message="inventory_levels/update")
    headers, body = receiver.received[0]
    assert headers["x-shopify-topic"] == "inventory_levels/update"
    assert json.loads(body)["available"] == 8


def test_sale_is_refused_when_stock_is_short_or_no_webhook_url_is_configured(sandbox, control, store, receiver):
    # given
    seed(control, store, "MUG-1", available=1)

    # when
    without_url = requests.post(
        f"{sandbox.url}/_sandbox/shopify/{store}/sales", json={"sku": "MUG-1", "quantity": 1}, timeout=10
    )
    control.config("shopify", store, webhook_url=receiver.url)
    short = requests.post(
        f"{sandbox.url}/_sandbox/shopify/{store}/sales", json={"sku": "MUG-1", "quantity": 2}, timeout=10
    )

    # then
    assert without_url.status_code == 409
    assert "webhook_url" in without_url.json()["error"]
    assert short.status_code == 409
    assert control.item("shopify", store, "MUG-1")["available"] == 1
    assert receiver.received == []


def test_setting_stock_at_a_location_the_item_is_not_stocked_at_is_a_user_error(control, admin, store):
    # given: a second location, where the item has no inventory level
    item = seed(control, store, "MUG-1", available=5)
    control.config("shopify", store, locations=["Warehouse"])
    locations = admin.graphql("{ locations(first: 5) { nodes { id name } } }")["data"]["locations"]["nodes"]
    warehouse = next(location["id"] for location in locations if location["name"] == "Warehouse")

    # when
    body = admin.graphql(
        SET_QUANTITIES,
        {
            "input": set_input(stock(item, 3, changeFromQuantity=None) | {"locationId": warehouse}),
            "key": str(uuid.uuid4()),
        },
    )

    # then
    [error] = payload(body, "inventorySetQuantities")["userErrors"]
    assert (error["code"], error["field"]) == (
        "ITEM_NOT_STOCKED_AT_LOCATION",
        ["input", "quantities", "0", "locationId"],
    )
    assert control.item("shopify", store, "MUG-1")["available"] == 5


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "[API] Invalid API key or access token (unrecognized login or wrong password)"),
        (503, "Service Unavailable"),
        (429, "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."),
    ],
)
def test_injected_faults_answer_in_shopify_shape_then_recover(control, admin, store, status, message):
    # given
    control.fault("shopify", store, status=status, count=1)

    # when
    faulted = admin.post("{ shop { id } }")
    recovered = admin.post("{ shop { id } }")

    # then
    assert (faulted.status_code, faulted.json()) == (status, {"errors": message})
    assert (status == 429) == ("Retry-After" in faulted.headers)
    assert recovered.status_code == 200
