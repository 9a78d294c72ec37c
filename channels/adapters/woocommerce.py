"""The `woocommerce` kind: WooCommerce REST API v3 (`{base_url}/wp-json/wc/v3`).

Auth: over https, Basic auth with the consumer key and secret; over plain http (a sandbox, a
shop without TLS) OAuth 1.0a one-legged in the query string, so the secret never travels.

Push: SKUs are resolved to product ids once (`GET /products?sku=A,B,...`; variations come back
with their `parent_id`) and the ids are kept as the listing's external ids
(`{"product_id": ..., "parent_id": ...}`). Prices and stock of one SKU go in one entry of
`POST /products/batch` (simple products) or `POST /products/{parent}/variations/batch`; the
answer holds one entry per product, and an entry with an `error` fails only its SKU.

Content (the `content` aspect, and the catalog refresh's batches): `name`, `description` and
the channel's mapped attributes as the product's `attributes` (`content_fields`; an update
replaces the whole list, and attributes without a mapping are never sent). Each goes by
`name`: a local attribute, or a global one's `pa_` taxonomy name as it shows in the shop.

Orders (a safety net beside the webhooks, which WooCommerce never retries): `GET /orders`
with `modified_after` (GMT, `dates_are_gmt=true`), `orderby=modified&order=asc`, paged by
`X-WP-TotalPages`; see services/polling.py.

Settings (all optional):
- `rate_per_s` (5), `burst` (10): our bucket; WooCommerce documents no limit, hosts add 429s.
- `batch_limit` (100): entries per batch call (WooCommerce's `woocommerce_rest_batch_items_limit`);
  a 413 `woocommerce_rest_request_entity_too_large` halves the call anyway.
- `oauth_signature_method` ("HMAC-SHA256" or "HMAC-SHA1"): for plain-http shops.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit

import requests

from . import oauth1
from .base import ORDER_POLL_PAGES, ChannelAdapter, LiveValue, Outcome, PolledOrder, PushItem, PushResult, RefreshPoll
from .http import session_for
from .push_refresh import poll_pushed, refresh_by_push
from .rest import (
    CallBudget, CallError, PushResults, chunks, json_body, money, network_error, order_pages_walk,
    status_error, timeout_s, unsupported,
)

API_PATH = "/wp-json/wc/v3"
LOOKUP_PAGE = 100  # WooCommerce's maximum `per_page`; one lookup asks for at most this many SKUs
TOO_LARGE = 413


@dataclass(frozen=True)
class _Entry:
    """One SKU's update inside a batch call, with the items it answers for."""

    sku: str
    product_id: int | None  # None only in a preview, before the lookup
    parent_id: int | None
    items: tuple[PushItem, ...]

    def body(self) -> dict:
        update: dict = {"id": self.product_id}
        for item in self.items:
            if item.aspect == "price":
                update["regular_price"] = money(item.price)
            elif item.aspect == "inventory":
                update["manage_stock"] = True
                update["stock_quantity"] = int(item.available)
            elif item.aspect == "content":
                update.update(content_fields(item))
        return update


def content_fields(item: PushItem) -> dict:
    """A content item as WooCommerce product fields: title, description and the mapped
    attributes (only those: `attributes` replaces the product's whole list)."""
    return {
        "name": item.title,
        "description": item.description,
        "attributes": [
            {"name": field.target, "visible": True,
             "options": [str(v) for v in field.value] if isinstance(field.value, list) else [str(field.value)]}
            for field in item.mapped_attributes
        ],
    }


@dataclass
class _Batch:
    path: str
    entries: list[_Entry] = field(default_factory=list)


def _by_sku(items: Sequence[PushItem]) -> dict[str, list[PushItem]]:
    by_sku: dict[str, list[PushItem]] = {}
    for item in items:
        by_sku.setdefault(item.sku, []).append(item)
    return by_sku


def _ids(product: dict) -> dict:
    if product.get("type") == "variation" and product.get("parent_id"):
        return {"product_id": product["id"], "parent_id": product["parent_id"]}
    return {"product_id": product["id"]}


def wc_gmt_time(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` in UTC, without an offset, for a filter with `dates_are_gmt`.
    WordPress reads an offset-less time as it is; one with an offset it converts to the
    site's timezone and would then compare with the GMT column."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _total_pages(response: requests.Response) -> int:
    try:
        return int(response.headers.get("X-WP-TotalPages") or 0)
    except ValueError:
        return 0


def _price(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


class WooCommerceAdapter(ChannelAdapter):
    """Prices and stock to a WooCommerce shop in batch calls of up to `batch_limit` products."""

    kind = "woocommerce"
    aspects = frozenset({"price", "inventory", "content"})
    batch_size = 100
    credential_fields = ("consumer_key", "consumer_secret")
    default_rate_per_s = 5.0
    default_burst = 10
    # Catalog refresh: a chunk is one `POST /products/batch` of content updates, sent by
    # `refresh_start` itself (see push_refresh.py).
    supports_bulk_refresh = True
    refresh_chunk_size = 100

    _reauthenticated = False

    def __init__(self, config, context):
        super().__init__(config, context)
        self.budget = CallBudget(context)

    def _begin(self) -> None:
        """Each push or fetch gets its own one-time 401 retry and its own call budget."""
        self._reauthenticated = False
        self.budget = CallBudget(self.context)

    # -- push -------------------------------------------------------------------------------

    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Resolve unknown SKUs, then send batch updates; one result per item."""
        self._begin()
        results = PushResults(items)
        sendable = unsupported(results, items, self.aspects, self.kind)
        try:
            for batch in self._batches(sendable, results):
                limit = max(1, int(self.setting("batch_limit", 100)))
                for entries in chunks(batch.entries, limit):
                    self._send(batch.path, entries, results)
        except CallError as error:
            return results.finish(error)
        return results.finish()

    def preview(self, items: Sequence[PushItem]) -> dict[str, dict]:
        """The batch entry each SKU would get, by the push's own builder; a SKU not resolved
        yet would first be looked up by SKU (its id shows as null)."""
        previews: dict[str, dict] = {}
        for sku, group in _by_sku([i for i in items if i.aspect in self.aspects]).items():
            ids = group[0].external_ids
            parent = ids.get("parent_id")
            entry = _Entry(sku, int(ids["product_id"]) if ids.get("product_id") else None, parent, tuple(group))
            path = f"/products/{parent}/variations/batch" if parent else "/products/batch"
            previews[sku] = {"method": "POST", "path": API_PATH + path, "update": entry.body(),
                             **({} if ids.get("product_id") else {"lookup": f"GET {API_PATH}/products?sku={sku}"})}
        return previews

    def _batches(self, items: list[PushItem], results: PushResults) -> list[_Batch]:
        by_sku = _by_sku(items)
        known = {sku: dict(group[0].external_ids) for sku, group in by_sku.items()
                 if group[0].external_ids.get("product_id")}
        unknown = [sku for sku in by_sku if sku not in known]
        resolved = {sku: _ids(product) for sku, product in self._lookup(unknown).items()} if unknown else {}
        for sku, ids in resolved.items():
            results.resolved(sku, ids)
        batches: dict[str, _Batch] = {}
        for sku, group in by_sku.items():
            ids = known.get(sku) or resolved.get(sku)
            if ids is None:
                for item in group:
                    results.set(item, Outcome.PERMANENT, "unlisted", f"no product with SKU {sku!r} in the shop",
                                listed=False)
                continue
            parent = ids.get("parent_id")
            path = f"/products/{parent}/variations/batch" if parent else "/products/batch"
            entry = _Entry(sku, int(ids["product_id"]), parent, tuple(group))
            batches.setdefault(path, _Batch(path)).entries.append(entry)
        return list(batches.values())

    def _send(self, path: str, entries: list[_Entry], results: PushResults) -> None:
        response = self._request("POST", path, json={"update": [entry.body() for entry in entries]})
        if response.status_code == TOO_LARGE and len(entries) > 1:
            # The shop's batch limit is lower than ours: halve until it takes them.
            middle = len(entries) // 2
            self._send(path, entries[:middle], results)
            self._send(path, entries[middle:], results)
            return
        if not 200 <= response.status_code < 300:
            error = self._error(response)
            if error.outcome is not Outcome.PERMANENT:
                raise error  # throttled, refused or failing: the next calls would be too
            for entry in entries:
                self._answer(entry, results, error.outcome, error.code, error.message)
            return
        answers = (json_body(response) or {}).get("update") or []
        for entry, answer in zip(entries, self._match(entries, answers)):
            if answer is None:
                self._answer(entry, results, Outcome.RETRY, "no_answer", "the batch answer did not mention this product")
            elif isinstance(answer.get("error"), dict):
                error = answer["error"]
                status = int((error.get("data") or {}).get("status") or 400)
                outcome = Outcome.RETRY if status >= 500 else Outcome.PERMANENT
                code = str(error.get("code") or f"http_{status}")
                self._answer(entry, results, outcome, code, str(error.get("message") or ""))
            else:
                self._answer(entry, results, Outcome.OK)

    @staticmethod
    def _match(entries: list[_Entry], answers: list) -> list[dict | None]:
        """Answers come in request order; an entry that failed may carry id 0, so position wins
        and ids are the fallback when the counts differ."""
        answers = [answer for answer in answers if isinstance(answer, dict)]
        if len(answers) == len(entries):
            return answers
        by_id = {answer.get("id"): answer for answer in answers}
        return [by_id.get(entry.product_id) for entry in entries]

    @staticmethod
    def _answer(entry: _Entry, results: PushResults, outcome: Outcome, code: str = "", message: str = "") -> None:
        for item in entry.items:
            if outcome is Outcome.OK:
                results.ok(item)
            else:
                results.set(item, outcome, code, message)

    # -- catalog refresh --------------------------------------------------------------------

    def refresh_start(self, items: Sequence[PushItem]) -> dict:
        """Send the chunk's content in batch calls now; the state holds the per-SKU outcome."""
        return refresh_by_push(self, items)

    def refresh_poll(self, state: dict) -> RefreshPoll:
        return poll_pushed(state)

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, skus: Sequence[str]) -> dict[str, LiveValue]:
        """Regular price and managed stock per SKU, read with the same lookup a push uses."""
        self._begin()
        wanted = list(dict.fromkeys(skus))
        try:
            # All the lookups at once, so a read retried while the bucket refills cannot starve.
            plain = [sku for sku in wanted if "," not in sku]
            lookups = len(chunks(plain, LOOKUP_PAGE)) + len(wanted) - len(plain)
            burst = int(self.bucket_defaults(self.config.settings)["default"][1])
            self.budget.reserve(min(lookups, burst))
            found = self._lookup(wanted)
        except CallError as error:
            raise error.for_read() from None
        finally:
            self.budget.release()
        live = {}
        for sku in skus:
            product = found.get(sku)
            if product is None:
                live[sku] = LiveValue(sku, listed=False)
                continue
            quantity = product.get("stock_quantity")
            live[sku] = LiveValue(
                sku,
                listed=True,
                price=_price(product.get("regular_price")),
                available=int(quantity) if product.get("manage_stock") and quantity is not None else None,
                external_ids=_ids(product),
            )
        return live

    # -- orders (a safety net beside the webhooks, which WooCommerce never retries) ---------

    def orders_updated_since(
        self, since: datetime, *, page_size: int = 100, max_pages: int = ORDER_POLL_PAGES
    ) -> list[PolledOrder]:
        """Orders modified after `since`, oldest first, each as the REST API shows it (the body
        its webhooks carry too). At most `max_pages` pages per call: the caller's cursor moves
        on and the next poll continues (`order_pages_walk`)."""
        self._begin()

        def fetch_page(page: int) -> tuple[list[PolledOrder], bool]:
            params = [
                ("modified_after", wc_gmt_time(since)), ("dates_are_gmt", "true"),
                ("orderby", "modified"), ("order", "asc"),
                ("per_page", str(min(page_size, LOOKUP_PAGE))), ("page", str(page)),
            ]
            response = self._request("GET", "/orders", params=params)
            if not 200 <= response.status_code < 300:
                raise self._error(response)
            answer = json_body(response)
            rows = answer if isinstance(answer, list) else []
            orders = [
                PolledOrder(str(row["id"]), str(row.get("date_modified_gmt") or ""),
                            json.dumps(row, separators=(",", ":")).encode())
                for row in rows if isinstance(row, dict) and row.get("id") is not None
            ]
            return orders, not rows or page >= _total_pages(response)

        return order_pages_walk(fetch_page, max_pages=max_pages, channel=self.config.name)

    # -- lookup -----------------------------------------------------------------------------

    def _lookup(self, skus: list[str]) -> dict[str, dict]:
        """SKU -> product (or variation) as the shop shows it; SKUs it lacks are left out.

        Recent WooCommerce takes comma-separated SKUs; older versions match the whole string
        as one SKU and find nothing, so a multi-SKU answer that lacks some is asked again per
        SKU. A SKU holding a comma can only be asked alone.
        """
        found: dict[str, dict] = {}
        plain = [sku for sku in skus if "," not in sku]
        for group in chunks(plain, LOOKUP_PAGE):
            found.update(self._products(group))
            if len(group) > 1:
                for sku in group:
                    if sku not in found:
                        found.update(self._products([sku]))
        for sku in skus:
            if "," in sku:
                found.update(self._products([sku]))
        return found

    def _products(self, skus: list[str]) -> dict[str, dict]:
        response = self._request("GET", "/products", params=[("sku", ",".join(skus)), ("per_page", str(LOOKUP_PAGE))])
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        wanted = set(skus)
        answer = json_body(response)
        products = answer if isinstance(answer, list) else []
        # Keep exact matches only: a shop that matches SKUs loosely must not hand us a neighbour.
        return {p["sku"]: p for p in products if isinstance(p, dict) and p.get("sku") in wanted and p.get("id")}

    # -- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None,
                 json: dict | None = None) -> requests.Response:
        """One call under the bucket; a 401 is tried once more (a fresh nonce and timestamp:
        clock skew or a nonce the shop thinks it saw), a 429 pauses every worker."""
        self.budget.take()
        url, auth = self._signed(method, f"{self.config.base_url.rstrip('/')}{API_PATH}{path}", params or [])
        try:
            response = session_for(self.config.id).request(
                method, url, json=json, auth=auth, headers={"Accept": "application/json"}, timeout=timeout_s(),
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        if response.status_code == 401 and not self._reauthenticated:
            self._reauthenticated = True
            return self._request(method, path, params=params, json=json)
        if response.status_code == 429:
            error = self._error(response)
            self.context.pause(error.retry_after or 1.0)
            raise error
        return response

    def _signed(self, method: str, url: str, params: list[tuple[str, str]]) -> tuple[str, tuple[str, str] | None]:
        credentials = self.config.credentials
        key, secret = credentials.get("consumer_key", ""), credentials.get("consumer_secret", "")
        if urlsplit(url).scheme == "https":
            return (f"{url}?{urlencode(params)}" if params else url), (key, secret)
        signed = oauth1.signed_url(
            method, url, params, consumer_key=key, consumer_secret=secret,
            signature_method=self.setting("oauth_signature_method", "HMAC-SHA256"),
        )
        return signed, None

    @staticmethod
    def _error(response: requests.Response) -> CallError:
        """WooCommerce errors are `{"code", "message", "data": {"status"}}`."""
        body = json_body(response)
        if isinstance(body, dict) and body.get("code"):
            return status_error(response, str(body["code"]), str(body.get("message") or ""))
        return status_error(response)
