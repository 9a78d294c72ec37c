"""Catalog refresh through Magento's asynchronous bulk API:

    refresh_start: PUT /rest/{store_code}/async/bulk/V1/products/bySku with one
                   {"product": {"sku", "name", "custom_attributes": [description]}} per SKU
                   -> 202 {"bulk_uuid", "request_items"}
    refresh_poll:  GET /rest/{store_code}/V1/bulk/{uuid}/status -> operations_list, one per
                   request body in order: 1 complete, 2/3 failed, 4 open, 5 rejected

The state keeps the bulk uuid and the SKUs in request order (operations carry no SKU).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import ChannelThrottled, Outcome, PushItem, RefreshPoll
from .rest import CallError, json_body

if TYPE_CHECKING:
    from .magento import MagentoAdapter

COMPLETE, OPEN = 1, 4


def product_body(item: PushItem) -> dict:
    product: dict = {"sku": item.sku, "name": item.title or item.sku}
    custom = [{"attribute_code": "description", "value": item.description}] if item.description else []
    # The channel's attribute mappings (`services/mapping.py`): only mapped attributes go out;
    # Magento takes a multiselect's options as a comma-separated string.
    custom += [
        {"attribute_code": mapped.target,
         "value": ",".join(map(str, mapped.value)) if isinstance(mapped.value, list) else mapped.value}
        for mapped in item.mapped_attributes
    ]
    if custom:
        product["custom_attributes"] = custom
    return {"product": product}


def _bulk_url(adapter: MagentoAdapter, path: str) -> str:
    return f"{adapter.config.base_url.rstrip('/')}/rest/{adapter.setting('store_code', 'all')}/async/bulk/V1{path}"


def _throttled_or(error: CallError) -> Exception:
    if error.outcome is Outcome.THROTTLED:
        return ChannelThrottled(error.retry_after or 1.0, error.message or error.code)
    return error


def bulk_start(adapter: MagentoAdapter, items: Sequence[PushItem]) -> dict:
    skus = list(dict.fromkeys(item.sku for item in items))
    by_sku = {item.sku: item for item in items}
    try:
        response = adapter._request("PUT", _bulk_url(adapter, "/products/bySku"),
                                    json=[product_body(by_sku[sku]) for sku in skus])
        if not 200 <= response.status_code < 300:
            raise adapter._error(response)
    except CallError as error:
        raise _throttled_or(error) from None
    answer = json_body(response)
    if not isinstance(answer, dict) or not answer.get("bulk_uuid"):
        raise CallError(Outcome.RETRY, "unreadable_answer", response.text[:200])
    return {"bulk_uuid": str(answer["bulk_uuid"]), "skus": skus}


def bulk_poll(adapter: MagentoAdapter, state: dict) -> RefreshPoll:
    skus = list(state.get("skus") or [])
    try:
        response = adapter._request("GET", adapter._url(f"/bulk/{state['bulk_uuid']}/status"))
        if not 200 <= response.status_code < 300:
            raise adapter._error(response)
    except CallError as error:
        raise _throttled_or(error) from None
    answer = json_body(response)
    operations = answer.get("operations_list") if isinstance(answer, dict) else None
    if not isinstance(operations, list):
        raise CallError(Outcome.RETRY, "unreadable_answer", response.text[:200])
    operations = sorted((op for op in operations if isinstance(op, dict)), key=lambda op: op.get("id") or 0)
    if len(operations) < len(skus) or any(op.get("status") == OPEN for op in operations):
        return RefreshPoll(done=False, retry_after=float(adapter.setting("bulk_poll_s", 1.0)), state=state)
    ok, failed = [], {}
    for sku, operation in zip(skus, operations, strict=False):
        if operation.get("status") == COMPLETE:
            ok.append(sku)
        else:
            failed[sku] = f"bulk status {operation.get('status')}: {operation.get('result_message') or ''}"[:255]
    return RefreshPoll(done=True, ok=tuple(ok), failed=failed, state=state)
