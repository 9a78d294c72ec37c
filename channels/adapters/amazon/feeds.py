"""JSON_LISTINGS_FEED for bulk pushes: createFeedDocument → upload → createFeed, then later
getFeed → getFeedDocument → download the processing report and map its issues back to SKUs.

Reading the results never waits: each `results` call asks getFeed once and answers None while
Amazon is still processing. Which SKUs and aspects each messageId carried is kept in the
channel cache (shared by every worker) until the report has been read.
"""
from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import requests

from ..base import Outcome, PushItem, PushResult
from ..http import session_for
from ..rest import CallError, PushResults, json_body, network_error, timeout_s, unsupported
from .documents import FEED_MAX_MESSAGES, feed_document, first_error
from .errors import sp_api_error

if TYPE_CHECKING:
    from .adapter import AmazonAdapter

FEEDS = "/feeds/2021-06-30"
CONTENT_TYPE = "application/json; charset=UTF-8"
PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})


def _field(answer: dict, name: str) -> str:
    value = answer.get(name)
    if not value:
        raise CallError(Outcome.RETRY, "unreadable_answer", f"no {name} in {str(answer)[:200]}")
    return str(value)


def _cache_name(feed_id: str) -> str:
    return f"amazon_feed:{feed_id}"


class Feeds:
    max_messages = FEED_MAX_MESSAGES

    def __init__(self, adapter: AmazonAdapter):
        self.adapter = adapter

    # -- submit -----------------------------------------------------------------------------

    def submit(self, items: list[PushItem]) -> str:
        adapter = self.adapter
        check = PushResults(items)
        if len(unsupported(check, items, adapter.aspects, adapter.kind)) != len(items):
            raise ValueError("a feed takes price and inventory items with their values only")
        groups: dict[str, list[PushItem]] = {}
        for item in items:
            groups.setdefault(item.sku, []).append(item)
        numbered = [(number, sku, group) for number, (sku, group) in enumerate(groups.items(), start=1)]
        document = feed_document(adapter.seller_id, numbered, adapter.offer)

        created = self._json(adapter.call(
            "POST", adapter.api_url(f"{FEEDS}/documents"), bucket="feed_documents", json={"contentType": CONTENT_TYPE},
        ))
        self._upload(_field(created, "url"), json.dumps(document, separators=(",", ":")).encode())
        feed = self._json(adapter.call(
            "POST", adapter.api_url(f"{FEEDS}/feeds"), bucket="feeds",
            json={"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [adapter.offer.marketplace_id],
                  "inputFeedDocumentId": _field(created, "feedDocumentId")},
        ))
        feed_id = _field(feed, "feedId")
        messages = [[number, sku, [item.aspect for item in group]] for number, sku, group in numbered]
        adapter.context.cache_set(
            _cache_name(feed_id), json.dumps({"messages": messages}), float(adapter.setting("feed_mapping_ttl_s", 604800)),
        )
        return feed_id

    def _upload(self, url: str, body: bytes) -> None:
        # A presigned S3 URL: outside SP-API's rate limits, and it must not see our token.
        try:
            response = session_for(self.adapter.config.id).put(
                url, data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=timeout_s(),
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        if not 200 <= response.status_code < 300:
            raise CallError(Outcome.RETRY, f"upload_http_{response.status_code}", response.text[:300])

    # -- results ----------------------------------------------------------------------------

    def results(self, feed_id: str) -> list[PushResult] | None:
        adapter = self.adapter
        stored = adapter.context.cache_get(_cache_name(feed_id))
        if stored is None:
            raise LookupError(f"feed {feed_id}: its messages are no longer known (expired or never sent from here)")
        messages = json.loads(stored)["messages"]
        feed = self._json(adapter.call("GET", adapter.api_url(f"{FEEDS}/feeds/{feed_id}"), bucket="feed_documents"))
        status = feed.get("processingStatus")
        if status in PENDING:
            return None
        if status == "DONE" and feed.get("resultFeedDocumentId"):
            issues = self._report(str(feed["resultFeedDocumentId"])).get("issues") or []
            results = self._mapped(messages, issues)
        else:
            # CANCELLED, or FATAL ("some, none or all may have completed"): resending is safe.
            results = [
                PushResult(sku, aspect, Outcome.RETRY, f"feed_{str(status).lower()}", f"feed {feed_id} ended {status}")
                for _, sku, aspects in messages for aspect in aspects
            ]
        adapter.context.cache_delete(_cache_name(feed_id))
        return results

    @staticmethod
    def _mapped(messages: list, issues: list) -> list[PushResult]:
        by_message: dict[int, list[dict]] = {}
        for issue in issues:
            if isinstance(issue, dict) and isinstance(issue.get("messageId"), int):
                by_message.setdefault(issue["messageId"], []).append(issue)
        results = []
        for number, sku, aspects in messages:
            errors = [issue for issue in by_message.get(number, []) if issue.get("severity") == "ERROR"]
            failure = first_error(errors) if errors else None
            for aspect in aspects:
                if failure is None:
                    results.append(PushResult(sku, aspect, Outcome.OK, listed=True))
                else:
                    results.append(PushResult(sku, aspect, Outcome.PERMANENT, failure[0], failure[1][:500]))
        return results

    def _report(self, document_id: str) -> dict:
        adapter = self.adapter
        document = self._json(adapter.call(
            "GET", adapter.api_url(f"{FEEDS}/documents/{document_id}"), bucket="feed_documents",
        ))
        try:
            response = session_for(adapter.config.id).get(_field(document, "url"), timeout=timeout_s())
        except requests.RequestException as exc:
            raise network_error(exc) from None
        if not 200 <= response.status_code < 300:
            raise CallError(Outcome.RETRY, f"report_http_{response.status_code}", response.text[:300])
        content = response.content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        try:
            report = json.loads(content)
        except ValueError:
            raise CallError(Outcome.RETRY, "unreadable_report", content[:200].decode(errors="replace")) from None
        return report if isinstance(report, dict) else {}

    @staticmethod
    def _json(response: requests.Response) -> dict:
        if not 200 <= response.status_code < 300:
            raise sp_api_error(response)
        body = json_body(response)
        if not isinstance(body, dict):
            raise CallError(Outcome.RETRY, "unreadable_answer", response.text[:200])
        return body
