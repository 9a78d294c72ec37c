"""The catalog refresh through Shopify's bulk import: one bulk mutation per chunk of content.

    refresh_start(items)
      SKU -> product id                        held ids, else looked up by SKU (`lookup.py`),
                                               kept in the channel's cache across attempts
      currentBulkOperation(type: MUTATION)     a running one -> ChannelThrottled (one per shop)
      JSONL: one `productUpdate` line per product (`content.py`, the adapter's content mapping)
      stagedUploadsCreate(BULK_MUTATION_VARIABLES) -> POST the file to the target it hands out
      bulkOperationRunMutation(mutation, stagedUploadPath)
                                               OPERATION_IN_PROGRESS -> ChannelThrottled
      -> state {bulk_operation_id, lines: [[sku, ...] per line], skus, failed, ...}
    refresh_poll(state)
      node(id:) on the BulkOperation           CREATED/RUNNING/CANCELING -> not done, retry_after
      COMPLETED -> the result JSONL: per `__lineNumber`, no userErrors -> ok, else failed
      FAILED/CANCELED/EXPIRED -> lines in `partialDataUrl` judged as above, the rest failed
                                 with the errorCode (or the status)

Only the three Admin API calls per chunk and each poll go through the cost bucket (about 35
points for a chunk, against 10 points per product through `productUpdate` one by one);
uploading the file and reading the results talk to the storage URLs Shopify hands out,
which the bucket does not govern. Nothing here sleeps: a wait is a `ChannelThrottled` (start)
or `retry_after` (poll).

Settings (all optional): `bulk_poll_interval_s` (the wait before the operation shows
progress, default 5 s; after that the wait follows its pace), `media_attribute` (see
`content.py`), `lookup_batch_size`.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence

import requests
from django.conf import settings

from ..base import ChannelThrottled, Outcome, PushItem, RefreshPoll
from ..http import session_for
from .client import ShopifyClient
from .content import content_variables
from .documents import (
    BULK_CONTENT_UPDATE,
    BULK_OPERATION,
    BULK_RUN_MUTATION,
    CURRENT_BULK_MUTATION,
    PRODUCT_IDS_BY_SKU,
    STAGED_UPLOADS_CREATE,
)
from .errors import ShopifyCallError
from .lookup import variants_by_sku

# Shopify: a staged JSONL of bulk mutation variables holds at most 20 MB.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# 2,000 lines: a content line (title, HTML description, a dozen metafields) is 1-4 KB, so a
# chunk is 2-8 MB, well under the 20 MB file limit; one bulk mutation runs per shop at a
# time, so chunks run one after another, and 2,000 lines keep each job minutes long (what a
# crash can cost to redo) while a 5,000-product refresh still needs only three jobs.
DEFAULT_CHUNK_SIZE = 2000
DEFAULT_POLL_INTERVAL_S = 5.0
MIN_POLL_S, MAX_POLL_S = 1.0, 60.0
RUNNING = frozenset({"CREATED", "RUNNING", "CANCELING"})
LOOKUP_BATCH = 100
LOOKUP_CACHE_TTL_S = 3600.0


class BulkRefresh:
    """The bulk path of one Shopify channel (`ShopifyAdapter.refresh_start` / `refresh_poll`)."""

    def __init__(self, client: ShopifyClient, *, channel_id: int, max_cost: int, channel_settings: dict):
        self.client = client
        self.channel_id = channel_id
        self.max_cost = max_cost
        self.settings = channel_settings

    # -- start ------------------------------------------------------------------------------

    def start(self, items: Sequence[PushItem]) -> dict:
        """Start one bulk mutation for these content items; its state, JSON-able."""
        try:
            return self._start(items)
        except ShopifyCallError as error:
            if error.outcome is Outcome.THROTTLED:
                raise ChannelThrottled(error.retry_after or 1.0, error.message) from error
            raise

    def _start(self, items: Sequence[PushItem]) -> dict:
        # Lookups first (kept in the shared cache): while another chunk's bulk mutation runs,
        # this one gets its ids ready, and starts as soon as the shop is free.
        failed: dict[str, str] = {}
        product_ids = self._product_ids(items, failed)
        held = {item.sku for item in items if item.external_ids.get("product_id")}
        self._refuse_if_running()
        lines, line_skus, size = [], [], 0
        by_product: dict[str, int] = {}
        for item in items:
            product_id = product_ids.get(item.sku)
            if product_id is None:
                continue
            if product_id in by_product:  # another SKU of a product already in the file
                line_skus[by_product[product_id]].append(item.sku)
                continue
            text = json.dumps(content_variables(item, product_id, self.settings.get("media_attribute") or ""),
                              separators=(",", ":"), ensure_ascii=False) + "\n"
            encoded = len(text.encode())
            if size + encoded > MAX_UPLOAD_BYTES:
                failed[item.sku] = f"the chunk's JSONL would exceed Shopify's {MAX_UPLOAD_BYTES} byte staged upload limit"
                continue
            size += encoded
            by_product[product_id] = len(lines)
            lines.append(text)
            line_skus.append([item.sku])
        state = {"bulk_operation_id": None, "lines": line_skus, "skus": [sku for skus in line_skus for sku in skus],
                 "failed": failed, "started_at": time.time(), "object_count": 0,
                 # Product ids found by SKU lookups, for the caller to keep as listings.
                 "external_ids": {sku: {"product_id": pid} for sku, pid in product_ids.items() if sku not in held}}
        if not lines:
            return state
        path = self._upload("".join(lines).encode())
        answer = self.client.execute(BULK_RUN_MUTATION, {"mutation": BULK_CONTENT_UPDATE, "stagedUploadPath": path})
        payload = answer.field("bulkOperationRunMutation")
        errors = payload.get("userErrors") or []
        if any(error.get("code") == "OPERATION_IN_PROGRESS" for error in errors):
            raise ChannelThrottled(self._poll_interval(), errors[0].get("message", "a bulk mutation is running"))
        if errors or not payload.get("bulkOperation"):
            error = errors[0] if errors else {"code": "no_bulk_operation", "message": "no bulk operation came back"}
            raise ShopifyCallError(Outcome.PERMANENT, str(error.get("code") or "bulk_refused"), str(error.get("message")))
        state["bulk_operation_id"] = payload["bulkOperation"]["id"]
        return state

    def _poll_interval(self) -> float:
        return float(self.settings.get("bulk_poll_interval_s") or DEFAULT_POLL_INTERVAL_S)

    def _refuse_if_running(self) -> None:
        current = self.client.execute(CURRENT_BULK_MUTATION).data.get("currentBulkOperation")
        if current and current.get("status") in RUNNING:
            raise ChannelThrottled(self._poll_interval(), f"bulk mutation {current.get('id')} is {current['status']}")

    def _product_ids(self, items: Sequence[PushItem], failed: dict[str, str]) -> dict[str, str]:
        """SKU -> product GID: held from an earlier push, else looked up by SKU.

        Lookups are kept in the channel's shared cache as they come in, so a start that the
        cost bucket stops half way (ChannelThrottled) resumes them instead of paying again."""
        found = {item.sku: item.external_ids["product_id"] for item in items if item.external_ids.get("product_id")}
        unresolved = list(dict.fromkeys(item.sku for item in items if item.sku not in found))
        if not unresolved:
            return found
        cache = self.client.context
        cache_key = "refresh_lookup:" + hashlib.sha256("\n".join(unresolved).encode()).hexdigest()[:32]
        known: dict[str, dict[str, str]] = json.loads(cache.cache_get(cache_key) or '{"found": {}, "failed": {}}')
        todo = [sku for sku in unresolved if sku not in known["found"] and sku not in known["failed"]]
        batch = int(self.settings.get("lookup_batch_size") or LOOKUP_BATCH)
        try:
            for start in range(0, len(todo), batch):
                part = todo[start:start + batch]
                lookup = variants_by_sku(self.client, part, max_cost=self.max_cost, batch=batch,
                                         document=PRODUCT_IDS_BY_SKU)
                for sku in part:
                    variant = lookup.found.get(sku)
                    if sku in lookup.duplicated:
                        known["failed"][sku] = f"several variants in the shop have SKU {sku}"
                    elif sku in lookup.unsure:
                        continue  # asked again next time
                    elif variant is None:
                        known["failed"][sku] = f"no variant with SKU {sku} in the shop"
                    else:
                        known["found"][sku] = variant.product_id
        finally:
            cache.cache_set(cache_key, json.dumps(known, separators=(",", ":")), LOOKUP_CACHE_TTL_S)
        for sku in unresolved:
            if sku in known["found"]:
                found[sku] = known["found"][sku]
            else:
                failed[sku] = known["failed"].get(sku) or f"the shop's answer for {sku} was truncated"
        return found

    def _upload(self, content: bytes) -> str:
        """Stage the JSONL and POST it to the target; its `stagedUploadPath` (the form's key)."""
        answer = self.client.execute(STAGED_UPLOADS_CREATE, {"input": [{
            "resource": "BULK_MUTATION_VARIABLES", "filename": "bulk_op_vars", "mimeType": "text/jsonl",
            "httpMethod": "POST",
        }]})
        payload = answer.field("stagedUploadsCreate")
        targets = payload.get("stagedTargets") or []
        if payload.get("userErrors") or not targets:
            message = (payload.get("userErrors") or [{"message": "no staged target came back"}])[0].get("message", "")
            raise ShopifyCallError(Outcome.PERMANENT, "staged_upload_refused", str(message))
        target = targets[0]
        form = {parameter["name"]: parameter["value"] for parameter in target["parameters"]}
        try:
            response = session_for(self.channel_id).post(
                target["url"], data=form, files={"file": ("bulk_op_vars", content, "text/jsonl")},
                timeout=settings.SYNCSVC["HTTP_TIMEOUT_S"],
            )
        except requests.RequestException as exc:
            raise ShopifyCallError(Outcome.RETRY, "staged_upload_network_error", str(exc)) from exc
        if response.status_code not in (200, 201, 204):
            outcome = Outcome.RETRY if response.status_code >= 500 else Outcome.PERMANENT
            raise ShopifyCallError(outcome, f"staged_upload_http_{response.status_code}", response.text[:500])
        return str(form["key"])

    # -- poll -------------------------------------------------------------------------------

    def poll(self, state: dict) -> RefreshPoll:
        """Where the bulk mutation stands; never sleeps. A throttled or failed read (of the
        operation or its result file) is "not done yet", to be polled again."""
        try:
            return self._poll(state)
        except ShopifyCallError as error:
            if error.outcome in (Outcome.THROTTLED, Outcome.RETRY):
                return RefreshPoll(done=False, retry_after=max(error.retry_after or MIN_POLL_S, MIN_POLL_S), state=state)
            raise

    def _poll(self, state: dict) -> RefreshPoll:
        failed = dict(state.get("failed") or {})
        lines: list[list[str]] = state.get("lines") or []
        operation_id = state.get("bulk_operation_id")
        if not operation_id:
            return RefreshPoll(done=True, failed=failed, state=state)
        operation = self.client.execute(BULK_OPERATION, {"id": operation_id}).data.get("node")
        if not operation:
            message = f"bulk operation {operation_id} is unknown to the shop"
            return RefreshPoll(done=True, failed={**failed, **{sku: message for skus in lines for sku in skus}},
                               state=state)
        status = operation.get("status")
        if status in RUNNING:
            return self._running(state, operation)
        if status == "COMPLETED":
            ok, line_failed = self._judge(self._results(operation.get("url")), lines)
            missing = "Shopify returned no result for this line"
            for index in range(len(lines)):
                if index not in ok and index not in line_failed:
                    line_failed[index] = missing
            return self._finished(state, lines, ok, line_failed, failed)
        # FAILED, CANCELED, EXPIRED: what ran before it stopped counts; the rest failed.
        reason = f"bulk operation {status}" + (f": {operation['errorCode']}" if operation.get("errorCode") else "")
        ok, line_failed = self._judge(self._results(operation.get("partialDataUrl")), lines)
        for index in range(len(lines)):
            if index not in ok and index not in line_failed:
                line_failed[index] = reason
        return self._finished(state, lines, ok, line_failed, failed)

    def _running(self, state: dict, operation: dict) -> RefreshPoll:
        """Not done: come back when, at the pace seen since the last poll, it should be."""
        now = time.time()
        count = int(operation.get("objectCount") or 0)
        total = len(state.get("lines") or [])
        before_count = int(state.get("object_count") or 0)
        before_at = float(state.get("polled_at") or state.get("started_at") or now)
        wait = self._poll_interval()
        if count > before_count and now > before_at:
            pace = (count - before_count) / (now - before_at)
            wait = (total - count) / pace
        new_state = {**state, "object_count": count, "polled_at": now, "status": operation.get("status")}
        return RefreshPoll(done=False, retry_after=min(max(wait, MIN_POLL_S), MAX_POLL_S), state=new_state)

    def _results(self, url: str | None) -> list[dict]:
        if not url:
            return []
        try:
            response = session_for(self.channel_id).get(url, timeout=settings.SYNCSVC["HTTP_TIMEOUT_S"])
        except requests.RequestException as exc:
            raise ShopifyCallError(Outcome.RETRY, "bulk_results_network_error", str(exc)) from exc
        if response.status_code != 200:
            raise ShopifyCallError(Outcome.RETRY, f"bulk_results_http_{response.status_code}", response.text[:500])
        results = []
        for text in response.text.splitlines():
            if text.strip():
                try:
                    results.append(json.loads(text))
                except ValueError:
                    continue
        return results

    @staticmethod
    def _judge(results: list[dict], lines: list[list[str]]) -> tuple[set[int], dict[int, str]]:
        """Line indexes confirmed, and those refused with Shopify's message."""
        ok: set[int] = set()
        refused: dict[int, str] = {}
        for result in results:
            index = result.get("__lineNumber")
            if not isinstance(index, int) or not 0 <= index < len(lines):
                continue
            payload = ((result.get("data") or {}).get("productUpdate")) or {}
            user_errors = payload.get("userErrors") or []
            errors = result.get("errors") or []
            if user_errors or errors or not payload.get("product"):
                problems = user_errors or errors or [{"message": "no product in the result line"}]
                refused[index] = "; ".join(_error_text(problem) for problem in problems)[:500]
            else:
                ok.add(index)
        return ok, refused

    @staticmethod
    def _finished(state: dict, lines: list[list[str]], ok: set[int], line_failed: dict[int, str],
                  failed: dict[str, str]) -> RefreshPoll:
        confirmed = tuple(sku for index in sorted(ok) for sku in lines[index])
        for index, message in line_failed.items():
            for sku in lines[index]:
                failed[sku] = message
        return RefreshPoll(done=True, ok=confirmed, failed=failed, state=state)


def _error_text(problem: dict) -> str:
    field = problem.get("field")
    message = str(problem.get("message", ""))
    return f"{'.'.join(str(part) for part in field)}: {message}" if field else message

