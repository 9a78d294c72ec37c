"""The Shopify adapter's catalog refresh through bulk mutations, against the sandbox over real
HTTP, with the channel's real (Redis) rate-limit context. Its documents are checked against
Shopify's official Admin 2025-01 schema."""
from __future__ import annotations

import json
from functools import lru_cache

import pytest
import requests
from graphql import build_client_schema, parse, validate
from graphql.execution.values import get_variable_values

from channels.adapters.base import ChannelThrottled, MappedAttribute, PushItem
from channels.adapters.shopify import documents
from channels.adapters.shopify.content import content_variables
from channels.models import Channel
from channels.services.flush import adapter_for_channel
from tests.support.reference import reference_file
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.django_db
TOKEN = "shpat_bulk"
MATERIAL = MappedAttribute("pim.material", "wool", "single_line_text_field")


@lru_cache(maxsize=1)
def reference_schema():
    introspection = json.loads(reference_file("specs/shopify-admin-2025-01.introspection.json").read_text())
    return build_client_schema(introspection["data"])


def schema_errors(document: str, variables: dict | None = None) -> list[str]:
    tree = parse(document)
    errors = [error.message for error in validate(reference_schema(), tree)]
    if not errors and variables is not None:
        coerced = get_variable_values(reference_schema(), tree.definitions[0].variable_definitions, variables)
        if isinstance(coerced, list):
            errors = [error.message for error in coerced]
    return errors


@pytest.fixture
def shop(sandbox, store_name):
    """A Shopify channel on a fresh sandbox shop (Plus plan: 1000 points/s)."""
    control, url = sandbox
    control.config("shopify", store_name, access_token=TOKEN, plan="plus", bulk_lines_per_s=2000)
    channel = Channel(name=f"bulk-{store_name}", kind="shopify", base_url=f"{url}/shopify/{store_name}",
                      settings={"plan": "plus", "bulk_poll_interval_s": 0.2})
    channel.credentials = {"access_token": TOKEN}
    channel.save()
    return control, store_name, channel


def content_item(sku: str, n: int, *, product_id: str = "", mapped=(MATERIAL,)) -> PushItem:
    return PushItem(sku=sku, aspect="content", version=n, external_ids={"product_id": product_id} if product_id else {},
                    title=f"Refreshed {n}", description=f"<p>Description {n}</p>", mapped_attributes=tuple(mapped))


def start_when_allowed(adapter, items) -> dict:
    """`refresh_start`, again after each ChannelThrottled (as the refresh job does)."""
    def attempt():
        try:
            return adapter.refresh_start(items)
        except ChannelThrottled:
            return None
    return wait_until(attempt, timeout=30, interval=0.2, message="the bulk mutation never started")


def poll_until_done(adapter, state: dict, timeout: float = 60.0):
    def attempt():
        nonlocal state
        result = adapter.refresh_poll(state)
        state = result.state or state
        return result if result.done else None
    return wait_until(attempt, timeout=timeout, interval=0.2, message="the bulk operation never finished")


def test_bulk_documents_and_a_content_line_validate_against_the_schema():
    line = content_variables(content_item("S-1", 1), "gid://shopify/Product/1")
    assert schema_errors(documents.BULK_CONTENT_UPDATE, line) == []
    assert schema_errors(documents.CURRENT_BULK_MUTATION, {}) == []
    assert schema_errors(documents.PRODUCT_IDS_BY_SKU, {"first": 101, "query": "sku:A OR sku:B"}) == []
    assert schema_errors(documents.BULK_OPERATION, {"id": "gid://shopify/BulkOperation/1"}) == []
    assert schema_errors(documents.BULK_RUN_MUTATION, {"mutation": documents.BULK_CONTENT_UPDATE,
                                                       "stagedUploadPath": "tmp/1/bulk/x/bulk_op_vars"}) == []
    assert schema_errors(documents.STAGED_UPLOADS_CREATE, {"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": "bulk_op_vars", "mimeType": "text/jsonl",
        "httpMethod": "POST"}]}) == []


def test_two_thousand_items_are_refreshed_through_bulk_operations_and_a_bad_one_is_reported(shop):
    # given 2,000 products in the shop, half of them with ids held from earlier pushes
    control, store, channel = shop
    product_ids = [control.put_item("shopify", store, f"BULK-{n}", price="5.00", available=3)["product_id"]
                   for n in range(2000)]
    items = [content_item(f"BULK-{n}", n, product_id=product_ids[n] if n % 2 == 0 else "") for n in range(2000)]
    # one whose mapped attribute Shopify refuses, and one the shop does not have
    items[7] = content_item("BULK-7", 7, mapped=(MappedAttribute("pim.weight_g", "heavy", "number_integer"),))
    items.append(content_item("NOT-IN-SHOP", 2000))
    adapter = adapter_for_channel(channel)

    # when the refresh runs chunk by chunk, as its job does
    ok: list[str] = []
    failed: dict[str, str] = {}
    operations = set()
    looked_up: dict[str, dict] = {}
    for start in range(0, len(items), adapter.refresh_chunk_size):
        state = start_when_allowed(adapter, items[start:start + adapter.refresh_chunk_size])
        operations.add(state["bulk_operation_id"])
        looked_up.update(state["external_ids"])
        result = poll_until_done(adapter, state)
        ok.extend(result.ok)
        failed.update(result.failed)

    # then it took one or two bulk operations, and every SKU but the two bad ones is confirmed
    assert 1 <= len(operations - {None}) <= 2
    assert set(failed) == {"BULK-7", "NOT-IN-SHOP"}
    assert "Value must be an integer" in failed["BULK-7"]
    assert "no variant with SKU NOT-IN-SHOP" in failed["NOT-IN-SHOP"]
    assert sorted(ok) == sorted(f"BULK-{n}" for n in range(2000) if n != 7)
    # the ids found by SKU come back for the caller to keep; held ones were not looked up
    assert looked_up["BULK-1999"] == {"product_id": product_ids[1999]} and "BULK-0" not in looked_up
    # and the shop shows the new content
    for n in (0, 1, 1999):
        item = control.item("shopify", store, f"BULK-{n}")
        assert item["title"] == f"Refreshed {n}"
        assert item["description_html"] == f"<p>Description {n}</p>"
        assert item["metafields"] == {"pim.material": "wool"}
    assert control.item("shopify", store, "BULK-7")["title"] == "BULK-7"


def test_a_second_start_while_a_bulk_mutation_runs_is_throttled(shop):
    # given a slow shop running a bulk mutation
    control, store, channel = shop
    control.config("shopify", store, bulk_lines_per_s=5)
    ids = [control.put_item("shopify", store, f"SLOW-{n}", price="1.00", available=1)["product_id"] for n in range(30)]
    adapter = adapter_for_channel(channel)
    first = adapter.refresh_start([content_item(f"SLOW-{n}", n, product_id=ids[n]) for n in range(20)])
    assert first["bulk_operation_id"]

    # when another chunk is started, then it is throttled, not failed
    with pytest.raises(ChannelThrottled) as throttled:
        adapter.refresh_start([content_item(f"SLOW-{n}", n, product_id=ids[n]) for n in range(20, 30)])
    assert throttled.value.retry_after > 0

    # and polling the first says not done yet, with a time to come back
    poll = adapter.refresh_poll(first)
    assert not poll.done and poll.retry_after and poll.retry_after > 0


def test_a_failed_bulk_operation_fails_the_lines_it_did_not_finish_with_its_error_code(shop):
    control, store, channel = shop
    control.config("shopify", store, bulk_fail_after_lines=3)
    ids = [control.put_item("shopify", store, f"FAIL-{n}", price="1.00", available=1)["product_id"] for n in range(10)]
    adapter = adapter_for_channel(channel)
    state = adapter.refresh_start([content_item(f"FAIL-{n}", n, product_id=ids[n]) for n in range(10)])

    result = poll_until_done(adapter, state)

    assert result.ok == ("FAIL-0", "FAIL-1", "FAIL-2")
    assert set(result.failed) == {f"FAIL-{n}" for n in range(3, 10)}
    assert result.failed["FAIL-9"] == "bulk operation FAILED: INTERNAL_SERVER_ERROR"


def test_skus_of_one_product_share_one_line_and_all_are_confirmed(shop):
    control, store, channel = shop
    for sku in ("TEE-S", "TEE-M", "TEE-L"):
        control.put_item("shopify", store, sku, price="9.00", available=1, product="tee")
    adapter = adapter_for_channel(channel)
    state = adapter.refresh_start([content_item(sku, n) for n, sku in enumerate(("TEE-S", "TEE-M", "TEE-L"))])
    assert state["lines"] == [["TEE-S", "TEE-M", "TEE-L"]]

    result = poll_until_done(adapter, state)

    assert result.ok == ("TEE-S", "TEE-M", "TEE-L") and result.failed == {}
    assert control.item("shopify", store, "TEE-L")["title"] == "Refreshed 0"
    assert requests.get(f"{channel.base_url}/_bulk/0.jsonl", timeout=5).status_code == 404
