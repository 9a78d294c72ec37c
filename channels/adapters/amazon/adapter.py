"""The `amazon` kind: Selling Partner API Listings Items 2021-08-01, and JSON_LISTINGS_FEED
feeds for bulk.

Auth: LWA (see `auth`): `x-amz-access-token` on every call, renewed once when SP-API answers
401/403. Push: one `PATCH /listings/2021-08-01/items/{sellerId}/{sku}` per SKU carrying both
its price and its quantity. A SKU is looked up once first (`GET` the listings item: 404 means
unlisted; found, its marketplace and ASIN become the listing's external ids), because Amazon
accepts a PATCH of an unknown SKU and only fails it later. A push of more than
`feed_threshold` items goes as one feed instead (see `feeds`), answered OK when the feed is
accepted, its per-SKU outcome read later with `feed_results`.

Settings (all optional; plan and region numbers belong here, never in code):
- `marketplace_id` ("ATVPDKIKX0DER", amazon.com), `currency` ("USD"), `product_type`
  ("PRODUCT"), `fulfillment_channel_code` ("DEFAULT": merchant-fulfilled).
- `lwa_url` (`{base_url}/auth/o2/token`; real Amazon: https://api.amazon.com/auth/o2/token).
- Buckets, rate per second and burst: `patch_rate_per_s` 5 / `patch_burst` 5 (patchListingsItem),
  `get_rate_per_s` 5 / `get_burst` 5 (getListingsItem), `feeds_rate_per_s` 0.0083 /
  `feeds_burst` 15 (createFeed), `feed_documents_rate_per_s` 0.5 / `feed_documents_burst` 15
  (createFeedDocument, getFeed, getFeedDocument), `auth_rate_per_s` 1 / `auth_burst` 5 (LWA).
  Amazon's `x-amzn-RateLimit-Limit` answers adjust them as they come.
- `feed_threshold` (1000): pushes with more items go as a feed (bulk jobs only: a flush batch
  is `batch_size` items); `feed_mapping_ttl_s` (604800): how long a feed's messages are kept
  to read its report.
- Catalog refresh (`refresh_start` / `refresh_poll`, see `refresh`): `language_tag` ("en_US")
  of the titles and descriptions, `feed_poll_s` (2): how soon to ask getFeed again.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote

import requests

from ..base import ChannelAdapter, LiveValue, Outcome, PushItem, PushResult, RefreshPoll
from ..http import session_for
from ..rest import CallBudget, CallError, PushResults, chunks, json_body, network_error, timeout_s, unsupported
from .auth import AccessTokens
from .documents import Offer, first_error, live_price, live_quantity, patch_request
from .errors import sp_api_error
from .feeds import Feeds
from .refresh import FeedRefresh

LISTINGS = "/listings/2021-08-01/items"
BUCKET_DEFAULTS = {  # bucket -> (rate per second, burst): SP-API's published defaults
    "patch": (5.0, 5.0),
    "get": (5.0, 5.0),
    "feeds": (0.0083, 15.0),
    "feed_documents": (0.5, 15.0),
    "auth": (1.0, 5.0),
}
# A fetch stopped by the rate limit resumes with what it read, if that is this fresh.
RESUME_READS_S = 30.0


class AmazonAdapter(ChannelAdapter):
    """Prices and quantities to Amazon listings: a PATCH per SKU, or a feed for bulk."""

    kind = "amazon"
    aspects = frozenset({"price", "inventory"})
    batch_size = 20  # ~20 PATCHes: a few seconds of the default 5 rps bucket per flush batch
    credential_fields = ("client_id", "client_secret", "refresh_token", "seller_id")
    default_rate_per_s = 5.0
    default_burst = 5
    # Catalog refresh: one JSON_LISTINGS_FEED per chunk (see `refresh`); createFeed allows a
    # burst of 15 then one per two minutes, so chunks are large.
    supports_bulk_refresh = True
    refresh_chunk_size = 2000

    _refreshed = False

    def __init__(self, config, context):
        super().__init__(config, context)
        self.tokens = AccessTokens(config, context)
        self.feeds = Feeds(self)
        self.budget = CallBudget(context)
        self._partial_reads: dict[str, tuple[LiveValue, float]] = {}

    def _begin(self) -> None:
        """Each operation gets its own one-time token renewal and its own call budget."""
        self._refreshed = False
        self.budget = CallBudget(self.context)

    @classmethod
    def bucket_defaults(cls, settings: dict) -> dict[str, tuple[float, float]]:
        """One bucket per SP-API operation family; "default" is the PATCH bucket."""
        buckets = {
            name: (float(settings.get(f"{name}_rate_per_s", rate)), float(settings.get(f"{name}_burst", burst)))
            for name, (rate, burst) in BUCKET_DEFAULTS.items()
        }
        buckets["default"] = buckets["patch"]
        return buckets

    @property
    def offer(self) -> Offer:
        return Offer(
            marketplace_id=self.setting("marketplace_id", "ATVPDKIKX0DER"),
            currency=self.setting("currency", "USD"),
            product_type=self.setting("product_type", "PRODUCT"),
            fulfillment_channel_code=self.setting("fulfillment_channel_code", "DEFAULT"),
        )

    @property
    def seller_id(self) -> str:
        return self.config.credentials.get("seller_id", "")

    # -- push -------------------------------------------------------------------------------

    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """One PATCH per SKU (its price and quantity together), or a feed above `feed_threshold`."""
        self._begin()
        results = PushResults(items)
        sendable = unsupported(results, items, self.aspects, self.kind)
        try:
            if len(sendable) > int(self.setting("feed_threshold", 1000)):
                self._push_by_feed(sendable, results)
            else:
                for sku, group in _by_sku(sendable).items():
                    self._patch(sku, group, results)
        except CallError as error:
            return results.finish(error)
        return results.finish()

    def preview(self, items: Sequence[PushItem]) -> dict[str, dict]:
        """Per SKU the `patchListingsItem` request the push would send (its own builder); no
        token is fetched and no listing resolved."""
        sendable = [item for item in items if item.aspect in self.aspects]
        return {
            sku: {"method": "PATCH", "url": self._item_url(sku), "params": {"marketplaceIds": self.offer.marketplace_id},
                  "body": patch_request(group, self.offer)}
            for sku, group in _by_sku(sendable).items()
        }

    def _patch(self, sku: str, items: list[PushItem], results: PushResults) -> None:
        if items[0].external_ids.get("marketplace_id") != self.offer.marketplace_id:
            # Never PATCH a SKU not seen listed: Amazon accepts a patch of an unknown SKU and
            # fails it later (or starts a half-made listing), so look it up once first.
            try:
                ids = self._resolve(sku)
            except CallError as error:
                if error.outcome is not Outcome.PERMANENT:
                    raise
                results.fail(items, error)  # Amazon refuses to look this SKU up: only it fails
                return
            if ids is None:
                for item in items:
                    results.set(item, Outcome.PERMANENT, "unlisted", f"no listing for SKU {sku!r}", listed=False)
                return
            results.resolved(sku, ids)
        response = self.call(
            "PATCH", self._item_url(sku), bucket="patch",
            params={"marketplaceIds": self.offer.marketplace_id}, json=patch_request(items, self.offer),
        )
        if response.status_code == 404:
            for item in items:
                results.set(item, Outcome.PERMANENT, "unlisted", f"no listing for SKU {sku!r}", listed=False)
            return
        if not 200 <= response.status_code < 300:
            error = sp_api_error(response)
            if error.outcome is not Outcome.PERMANENT:
                raise error
            results.fail(items, error)
            return
        answer = json_body(response) or {}
        status = answer.get("status") if isinstance(answer, dict) else None
        if status in ("ACCEPTED", "VALID"):
            for item in items:
                results.ok(item)
            return
        code, message = first_error(answer.get("issues") if isinstance(answer, dict) else None) or (
            "invalid", f"submission status {status!r}")
        results.fail(items, CallError(Outcome.PERMANENT, code, message))

    def _resolve(self, sku: str) -> dict | None:
        """The listing's ids (marketplace, ASIN when Amazon says) or None when there is none."""
        params = {"marketplaceIds": self.offer.marketplace_id, "includedData": "summaries"}
        response = self.call("GET", self._item_url(sku), bucket="get", params=params)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise sp_api_error(response)
        item = json_body(response)
        summaries = item.get("summaries") if isinstance(item, dict) else None
        summary = summaries[0] if isinstance(summaries, list) and summaries else {}
        summary = summary if isinstance(summary, dict) else {}
        ids = {"marketplace_id": self.offer.marketplace_id}
        if summary.get("asin"):
            ids["asin"] = summary["asin"]
        return ids

    def _push_by_feed(self, items: list[PushItem], results: PushResults) -> None:
        groups = list(_by_sku(items).values())
        size = self.feeds.max_messages
        for start in range(0, len(groups), size):
            chunk = [item for group in groups[start:start + size] for item in group]
            feed_id = self.feeds.submit(chunk)
            for item in chunk:
                results.set(item, Outcome.OK, "feed_submitted", f"feed {feed_id}", listed=None)

    def push_feed(self, items: Sequence[PushItem]) -> str:
        """Send price/inventory items as one JSON_LISTINGS_FEED and answer its feedId.

        Raises CallError when SP-API or the bucket does not take it now (its `outcome` says
        whether to wait, retry or fix credentials); read the outcome with `feed_results`.
        """
        self._begin()
        return self.feeds.submit(list(items))

    def feed_results(self, feed_id: str) -> list[PushResult] | None:
        """Per-item results of a feed once Amazon has processed it, else None (one getFeed
        call: poll again later). Raises CallError like `push_feed`, LookupError when the
        feed's messages are no longer known."""
        self._begin()
        return self.feeds.results(feed_id)

    # -- catalog refresh --------------------------------------------------------------------

    def refresh_start(self, items: Sequence[PushItem]) -> dict:
        """One JSON_LISTINGS_FEED patching these SKUs' titles and descriptions; its feed id."""
        self._begin()
        return FeedRefresh(self).start(items)

    def refresh_poll(self, state: dict) -> RefreshPoll:
        """getFeed once; when done, the processing report's outcome per SKU."""
        self._begin()
        return FeedRefresh(self).poll(state)

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, skus: Sequence[str]) -> dict[str, LiveValue]:
        """Price and merchant-fulfilled quantity per SKU, one getListingsItem each.

        The reads of a burst are reserved together, and a fetch the rate limit stopped keeps
        what it read for the next try of the same fetch, so a large read always progresses."""
        self._begin()
        now = time.monotonic()
        done = {sku: value for sku, (value, at) in self._partial_reads.items() if now - at < RESUME_READS_S}
        todo = [sku for sku in dict.fromkeys(skus) if sku not in done]
        burst = max(1, int(self.bucket_defaults(self.config.settings)["get"][1]))
        try:
            for group in chunks(todo, burst):
                self.budget.reserve(len(group), bucket="get")
                for sku in group:
                    done[sku] = self._read(sku)
                    self._partial_reads[sku] = (done[sku], time.monotonic())
        except CallError as error:
            raise error.for_read() from None
        finally:
            self.budget.release()
        self._partial_reads.clear()
        return {sku: done[sku] for sku in dict.fromkeys(skus)}

    def _read(self, sku: str) -> LiveValue:
        params = {"marketplaceIds": self.offer.marketplace_id, "includedData": "attributes,fulfillmentAvailability"}
        response = self.call("GET", self._item_url(sku), bucket="get", params=params)
        if response.status_code == 404:
            return LiveValue(sku, listed=False)
        if not 200 <= response.status_code < 300:
            raise sp_api_error(response)
        item = json_body(response)
        if not isinstance(item, dict):
            raise CallError(Outcome.RETRY, "unreadable_answer", response.text[:200])
        offer = self.offer
        return LiveValue(
            sku, listed=True, price=live_price(item, offer.marketplace_id),
            available=live_quantity(item, offer.fulfillment_channel_code),
        )

    # -- HTTP -------------------------------------------------------------------------------

    def _item_url(self, sku: str) -> str:
        return f"{self.api_url(LISTINGS)}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def api_url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}{path}"

    def call(self, method: str, url: str, *, bucket: str, params=None, json=None) -> requests.Response:
        """One SP-API call under `bucket`. Learns the bucket's rate from `x-amzn-RateLimit-Limit`,
        renews the access token once on 401/403, pauses the bucket on 429."""
        token = self.tokens.current()
        self.budget.take(bucket)
        headers = {"x-amz-access-token": token, "Accept": "application/json"}
        try:
            response = session_for(self.config.id).request(
                method, url, params=params, json=json, headers=headers, timeout=timeout_s(),
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        limit = response.headers.get("x-amzn-RateLimit-Limit")
        if limit:
            try:
                self.context.observe(bucket=bucket, restore_rate=float(limit))
            except ValueError:
                pass  # a header we cannot read teaches us nothing
        if response.status_code in (401, 403) and not self._refreshed:
            # Expired or revoked tokens come back as 403 "Unauthorized" as often as 401.
            self._refreshed = True
            self.tokens.forget()
            return self.call(method, url, bucket=bucket, params=params, json=json)
        if response.status_code == 429:
            error = sp_api_error(response)
            self.context.pause(error.retry_after or 1.0, bucket=bucket)
            raise error
        return response


def _by_sku(items: Sequence[PushItem]) -> dict[str, list[PushItem]]:
    groups: dict[str, list[PushItem]] = {}
    for item in items:
        groups.setdefault(item.sku, []).append(item)
    return groups
