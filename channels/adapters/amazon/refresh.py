"""Catalog refresh through JSON_LISTINGS_FEED: one feed per chunk of content items.

    refresh_start: createFeedDocument -> upload (PATCH messages: item_name, product_description)
                   -> createFeed; the remote state is the feed id and which SKU each messageId is
    refresh_poll:  getFeed once; when DONE, getFeedDocument and the processing report: an ERROR
                   issue fails its message's SKU, every other SKU is confirmed

The state carries the message numbers itself (not the channel cache), so a refresh resumed
after a crash, or a Redis restart, can still read its report.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..base import ChannelThrottled, Outcome, PushItem, RefreshPoll
from ..rest import CallError
from .documents import FEED_VERSION, first_error
from .feeds import CONTENT_TYPE, FEEDS, PENDING, Feeds, _field

if TYPE_CHECKING:
    from .adapter import AmazonAdapter


def content_patches(item: PushItem, marketplace_id: str, language_tag: str) -> list[dict]:
    """`replace` of the listing's title and description (attributes of every product type)."""
    def localized(value: str) -> list[dict]:
        return [{"value": value, "language_tag": language_tag, "marketplace_id": marketplace_id}]

    patches = [{"op": "replace", "path": "/attributes/item_name", "value": localized(item.title or item.sku)}]
    if item.description:
        patches.append({"op": "replace", "path": "/attributes/product_description", "value": localized(item.description)})
    # The channel's attribute mappings (`services/mapping.py`): only mapped attributes go out.
    for mapped in item.mapped_attributes:
        values = mapped.value if isinstance(mapped.value, list) else [mapped.value]
        patches.append({"op": "replace", "path": f"/attributes/{mapped.target}",
                        "value": [{"value": value, "marketplace_id": marketplace_id} for value in values]})
    return patches


class FeedRefresh:
    def __init__(self, adapter: AmazonAdapter):
        self.adapter = adapter
        self.feeds = Feeds(adapter)

    def start(self, items: Sequence[PushItem]) -> dict:
        adapter = self.adapter
        offer = adapter.offer
        language = adapter.setting("language_tag", "en_US")
        skus = list(dict.fromkeys(item.sku for item in items))
        by_sku = {item.sku: item for item in items}
        document = {
            "header": {"sellerId": adapter.seller_id, "version": FEED_VERSION, "issueLocale": "en_US"},
            "messages": [
                {"messageId": number, "sku": sku, "operationType": "PATCH", "productType": offer.product_type,
                 "patches": content_patches(by_sku[sku], offer.marketplace_id, language)}
                for number, sku in enumerate(skus, start=1)
            ],
        }
        try:
            created = self.feeds._json(adapter.call(
                "POST", adapter.api_url(f"{FEEDS}/documents"), bucket="feed_documents",
                json={"contentType": CONTENT_TYPE},
            ))
            self.feeds._upload(_field(created, "url"), json.dumps(document, separators=(",", ":")).encode())
            feed = self.feeds._json(adapter.call(
                "POST", adapter.api_url(f"{FEEDS}/feeds"), bucket="feeds",
                json={"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [offer.marketplace_id],
                      "inputFeedDocumentId": _field(created, "feedDocumentId")},
            ))
        except CallError as error:
            raise _throttled_or(error) from None
        return {"feed_id": _field(feed, "feedId"), "skus": skus}

    def poll(self, state: dict) -> RefreshPoll:
        adapter = self.adapter
        feed_id, skus = state["feed_id"], list(state.get("skus") or [])
        try:
            feed = self.feeds._json(adapter.call(
                "GET", adapter.api_url(f"{FEEDS}/feeds/{feed_id}"), bucket="feed_documents",
            ))
            status = feed.get("processingStatus")
            if status in PENDING:
                return RefreshPoll(done=False, retry_after=float(adapter.setting("feed_poll_s", 2.0)),
                                   state={**state, "status": status})
            if status != "DONE" or not feed.get("resultFeedDocumentId"):
                message = f"feed {feed_id} ended {status}"
                return RefreshPoll(done=True, failed={sku: message for sku in skus}, state={**state, "status": status})
            report = self.feeds._report(str(feed["resultFeedDocumentId"]))
        except CallError as error:
            raise _throttled_or(error) from None
        errors: dict[int, list[dict]] = {}
        for issue in report.get("issues") or []:
            if isinstance(issue, dict) and isinstance(issue.get("messageId"), int) and issue.get("severity") == "ERROR":
                errors.setdefault(issue["messageId"], []).append(issue)
        ok, failed = [], {}
        for number, sku in enumerate(skus, start=1):
            if number in errors:
                code, message = first_error(errors[number]) or ("invalid", "")
                failed[sku] = f"{code}: {message}"[:255]
            else:
                ok.append(sku)
        return RefreshPoll(done=True, ok=tuple(ok), failed=failed, state={**state, "status": status})


def _throttled_or(error: CallError) -> Exception:
    if error.outcome is Outcome.THROTTLED:
        return ChannelThrottled(error.retry_after or 1.0, error.message or error.code)
    return error
