"""The `magento` kind: Magento 2 / Adobe Commerce REST (`{base_url}/rest/{store_code}/V1`).

Auth: an integration token (credential `token`, a bearer token living until revoked) or an
admin user (`username` + `password`): `POST {base_url}/rest/V1/integration/admin/token` answers
a token (4 h by default), shared by every worker through the channel cache and renewed before
it expires and once on a 401.

Push: prices in one `POST /V1/products/base-prices` (the answer lists only the failures, each
naming its SKU in `parameters`); stock through MSI in one `POST /V1/inventory/source-items`,
which refuses a batch as a whole: the SKUs the refusal names are set aside and the rest resent,
and a refusal naming none is halved until the bad SKU is alone.

Settings (all optional):
- `store_code` ("all"): the store view in the URL.
- `store_id` (0): the store the base prices are for (0: all store views).
- `source_code` ("default"): the MSI source whose quantity we set.
- `admin_token_ttl_s` (14400): how long the shop keeps an admin token
  (Stores > Configuration > Services > OAuth > Access Token Expiration).
- `rate_per_s` (10), `burst` (20): our bucket (Magento has no platform limit of its own).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import requests

from .base import ORDER_POLL_PAGES, ChannelAdapter, LiveValue, Outcome, PolledOrder, PushItem, PushResult, RefreshPoll
from .http import session_for
from .magento_refresh import bulk_poll, bulk_start
from .rest import (
    CallBudget, CallError, PushResults, float_money, json_body, network_error, order_pages_walk,
    status_error, timeout_s, unsupported,
)

TOKEN_CACHE = "magento_admin_token"
TOKEN_MARGIN_S = 300.0  # renew a little before the shop forgets the token
_UNLISTED = re.compile(r"invalid attribute sku|doesn't exist|does not exist|not found|no such entity", re.IGNORECASE)


def render(message: str, parameters) -> str:
    """Magento's `%1` / `%name` placeholders filled from `parameters` (a list or a dict)."""
    if isinstance(parameters, dict):
        names = {str(key): value for key, value in parameters.items()}
    elif isinstance(parameters, list):
        names = {str(index + 1): value for index, value in enumerate(parameters)}
    else:
        return message
    return re.sub(r"%(\w+)", lambda m: str(names.get(m.group(1), m.group(0))), message)


def skus_named(parameters, candidates: set[str]) -> set[str]:
    """The SKUs of `candidates` a failure names: a value under a key called "sku" (any case),
    a `fieldName: SKU` / `fieldValue` pair, or any value that is one of the candidates."""
    if isinstance(parameters, dict):
        named = {str(value) for key, value in parameters.items() if str(key).lower() == "sku"}
        if str(parameters.get("fieldName", "")).lower() == "sku":
            named.add(str(parameters.get("fieldValue", "")))
        values = parameters.values()
    elif isinstance(parameters, list):
        named, values = set(), parameters
    else:
        return set()
    for value in values:
        if isinstance(value, (str, int)):
            # "A,B": Magento joins the SKUs of one failure with commas in some messages.
            named |= {part.strip() for part in str(value).split(",")} & candidates
    return named & candidates


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


class MagentoAdapter(ChannelAdapter):
    """Base prices and MSI source quantities to a Magento 2 store, one bulk call per aspect."""

    kind = "magento"
    aspects = frozenset({"price", "inventory"})
    batch_size = 100
    credential_fields = ("token", "username", "password")
    default_rate_per_s = 10.0
    default_burst = 20
    # Catalog refresh through the async bulk API (see magento_refresh.py): one bulk per chunk.
    supports_bulk_refresh = True
    refresh_chunk_size = 500

    _refreshed = False

    def __init__(self, config, context):
        super().__init__(config, context)
        self.budget = CallBudget(context)

    def _begin(self) -> None:
        """Each push or fetch gets its own one-time token renewal and its own call budget."""
        self._refreshed = False
        self.budget = CallBudget(self.context)

    @classmethod
    def validate_credentials(cls, credentials: dict) -> dict[str, str]:
        """Either an integration `token`, or an admin `username` and `password`."""
        if credentials.get("token"):
            return {}
        missing = {
            name: "required for a magento channel without an integration token"
            for name in ("username", "password") if not credentials.get(name)
        }
        if len(missing) == 2:
            return {"token": "required for a magento channel: an integration token, or username and password"}
        return missing

    # -- push -------------------------------------------------------------------------------

    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Prices in one base-prices call, quantities in one source-items call."""
        self._begin()
        results = PushResults(items)
        sendable = unsupported(results, items, self.aspects, self.kind)
        try:
            prices = [item for item in sendable if item.aspect == "price"]
            quantities = [item for item in sendable if item.aspect == "inventory"]
            if prices:
                self._push_prices(prices, results)
            if quantities:
                self._push_quantities(quantities, results)
        except CallError as error:
            return results.finish(error)
        return results.finish()

    def preview(self, items: Sequence[PushItem]) -> dict[str, dict]:
        """Per SKU its entries of the base-prices and source-items calls, by the push's builders."""
        previews: dict[str, dict] = {}
        for item in items:
            if item.aspect == "price":
                body, path = self._prices_body([item]), "/products/base-prices"
            elif item.aspect == "inventory":
                body, path = self._quantities_body([item]), "/inventory/source-items"
            else:
                continue
            previews.setdefault(item.sku, {})[f"POST {self._url(path)}"] = body
        return previews

    def _prices_body(self, items: list[PushItem]) -> dict:
        store_id = int(self.setting("store_id", 0))
        return {"prices": [{"sku": item.sku, "price": float_money(item.price), "store_id": store_id} for item in items]}

    def _quantities_body(self, items: list[PushItem]) -> dict:
        source_code = self.setting("source_code", "default")
        return {
            "sourceItems": [
                {"sku": item.sku, "source_code": source_code, "quantity": int(item.available),
                 "status": 1 if item.available > 0 else 0}
                for item in items
            ]
        }

    def _push_prices(self, items: list[PushItem], results: PushResults) -> None:
        body = self._prices_body(items)
        response = self._request("POST", self._url("/products/base-prices"), json=body)
        if not 200 <= response.status_code < 300:
            error = self._error(response)
            if error.outcome is not Outcome.PERMANENT:
                raise error
            results.fail(items, error)
            return
        failures = json_body(response)
        failed: dict[str, tuple[str, str]] = {}
        unmatched: list[str] = []
        candidates = {item.sku for item in items}
        for failure in failures if isinstance(failures, list) else []:
            if not isinstance(failure, dict):
                continue
            parameters = failure.get("parameters")
            message = render(str(failure.get("message") or "price refused"), parameters)
            named = skus_named(parameters, candidates)
            if not named:
                unmatched.append(message)
            for sku in named:
                failed.setdefault(sku, ("unlisted" if _UNLISTED.search(message) else "price_refused", message))
        for item in items:
            if item.sku in failed:
                code, message = failed[item.sku]
                results.set(item, Outcome.PERMANENT, code, message, listed=False if code == "unlisted" else None)
            elif unmatched:
                # Magento applied the prices it did not list, but we cannot tell whose this
                # failure is: resending a price is harmless, calling a failed one delivered is not.
                results.set(item, Outcome.RETRY, "price_failure_unmatched", "; ".join(unmatched))
            else:
                results.ok(item)

    def _push_quantities(self, items: list[PushItem], results: PushResults) -> None:
        body = self._quantities_body(items)
        response = self._request("POST", self._url("/inventory/source-items"), json=body)
        if 200 <= response.status_code < 300:
            for item in items:
                results.ok(item)
            return
        error = self._error(response)
        if error.outcome is not Outcome.PERMANENT:
            raise error
        # MSI saves all or nothing: set aside what the refusal names and resend the rest, or
        # halve a refusal that names nobody until each bad SKU is alone.
        skus = {item.sku for item in items}
        named = skus if len(items) == 1 else skus_named_in_error(json_body(response), skus)
        for item in items:
            if item.sku in named:
                unlisted = bool(_UNLISTED.search(error.message))
                results.set(item, Outcome.PERMANENT, "unlisted" if unlisted else error.code, error.message,
                            listed=False if unlisted else None)
        rest = [item for item in items if item.sku not in named]
        if not rest:
            return
        if named:
            self._push_quantities(rest, results)
            return
        middle = len(rest) // 2
        self._push_quantities(rest[:middle], results)
        self._push_quantities(rest[middle:], results)

    # -- catalog refresh --------------------------------------------------------------------

    def refresh_start(self, items: Sequence[PushItem]) -> dict:
        """One async bulk `PUT /async/bulk/V1/products/bySku` of the chunk's names and
        descriptions; the state is its bulk uuid and SKUs."""
        self._begin()
        return bulk_start(self, items)

    def refresh_poll(self, state: dict) -> RefreshPoll:
        """`GET /V1/bulk/{uuid}/status` once: done when no operation is open."""
        self._begin()
        return bulk_poll(self, state)

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, skus: Sequence[str]) -> dict[str, LiveValue]:
        """Base price (for `store_id`) and the quantity at `source_code` per SKU."""
        self._begin()
        skus = list(dict.fromkeys(skus))
        try:
            self.budget.reserve(2)  # both reads at once: a retried read cannot starve
            prices = self._read_prices(skus)
            quantities = self._read_quantities([sku for sku in skus if sku in prices]) if prices else {}
        except CallError as error:
            raise error.for_read() from None
        finally:
            self.budget.release()
        return {
            sku: LiveValue(sku, listed=True, price=prices[sku], available=quantities.get(sku))
            if sku in prices else LiveValue(sku, listed=False)
            for sku in skus
        }

    def _read_prices(self, skus: list[str]) -> dict[str, Decimal | None]:
        """SKU -> base price. Magento refuses the whole read when one SKU is unknown: drop the
        SKUs its error names and ask again, and ask one by one when it names none."""
        remaining = list(skus)
        while remaining:
            response = self._request("POST", self._url("/products/base-prices-information"), json={"skus": remaining})
            if 200 <= response.status_code < 300:
                return self._prices_of(json_body(response), remaining)
            error = self._error(response)
            if error.outcome is not Outcome.PERMANENT:
                raise error
            named = skus_named_in_error(json_body(response), set(remaining))
            if not named:
                break
            remaining = [sku for sku in remaining if sku not in named]
        if len(remaining) <= 1:
            return {}
        prices: dict[str, Decimal | None] = {}
        for sku in remaining:
            response = self._request("POST", self._url("/products/base-prices-information"), json={"skus": [sku]})
            if 200 <= response.status_code < 300:
                prices.update(self._prices_of(json_body(response), [sku]))
            elif (error := self._error(response)).outcome is not Outcome.PERMANENT:
                raise error
        return prices

    def _prices_of(self, answer, skus: list[str]) -> dict[str, Decimal | None]:
        store_id = int(self.setting("store_id", 0))
        prices: dict[str, Decimal | None] = {}
        for row in answer if isinstance(answer, list) else []:
            if not isinstance(row, dict) or row.get("sku") not in skus:
                continue
            # Prefer the row of our store; another store's row only when ours is absent.
            if row.get("store_id") == store_id or row["sku"] not in prices:
                prices[row["sku"]] = _decimal(row.get("price"))
        return prices

    def _read_quantities(self, skus: list[str]) -> dict[str, int | None]:
        prefix = "searchCriteria[filter_groups][0][filters][0]"
        params = {f"{prefix}[field]": "sku", f"{prefix}[value]": ",".join(skus), f"{prefix}[condition_type]": "in"}
        response = self._request("GET", self._url("/inventory/source-items"), params=params)
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        source_code = self.setting("source_code", "default")
        quantities: dict[str, int | None] = {}
        answer = json_body(response)
        rows = answer.get("items") if isinstance(answer, dict) else None
        for row in rows or []:
            # Filter here too: the SKU list is only a filter the shop may apply loosely.
            if isinstance(row, dict) and row.get("sku") in skus and row.get("source_code") == source_code:
                quantity = _decimal(row.get("quantity"))
                quantities[row["sku"]] = int(quantity) if quantity is not None else None
        return quantities

    # -- orders (Magento sends no webhooks: syncsvc polls) ----------------------------------

    def orders_updated_since(
        self, since: datetime, *, page_size: int = 100, max_pages: int = ORDER_POLL_PAGES
    ) -> list[PolledOrder]:
        """Orders updated at or after `since` (sent as Magento's `YYYY-MM-DD HH:MM:SS`, UTC),
        oldest first, as the shop sent each one. At most `max_pages` pages per call: the
        caller's cursor moves on and the next poll continues (`order_pages_walk`)."""
        self._begin()
        prefix = "searchCriteria[filter_groups][0][filters][0]"

        def fetch_page(page: int) -> tuple[list[PolledOrder], bool]:
            params = {
                f"{prefix}[field]": "updated_at", f"{prefix}[value]": magento_time(since),
                f"{prefix}[condition_type]": "gteq",
                "searchCriteria[sortOrders][0][field]": "updated_at",
                "searchCriteria[sortOrders][0][direction]": "ASC",
                "searchCriteria[pageSize]": str(page_size), "searchCriteria[currentPage]": str(page),
            }
            response = self._request("GET", self._url("/orders"), params=params)
            if not 200 <= response.status_code < 300:
                raise self._error(response)
            answer = json_body(response)
            rows = answer.get("items") if isinstance(answer, dict) else None
            orders = [
                PolledOrder(str(row["entity_id"]), str(row.get("updated_at") or ""),
                            json.dumps(row, separators=(",", ":")).encode())
                for row in rows or [] if isinstance(row, dict) and row.get("entity_id") is not None
            ]
            total = answer.get("total_count") if isinstance(answer, dict) else 0
            return orders, not rows or page * page_size >= int(total or 0)

        return order_pages_walk(fetch_page, max_pages=max_pages, channel=self.config.name)

    # -- HTTP and auth ----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/rest/{self.setting('store_code', 'all')}/V1{path}"

    def _request(self, method: str, url: str, *, json=None, params=None) -> requests.Response:
        """One call under the bucket with the bearer token; a 401 renews an admin token (or
        resends an integration token) once, a 429 pauses every worker."""
        token = self._token()
        self.budget.take()
        try:
            response = session_for(self.config.id).request(
                method, url, json=json, params=params, timeout=timeout_s(),
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        if response.status_code == 401 and not self._refreshed:
            self._refreshed = True
            self.context.cache_delete(TOKEN_CACHE)
            return self._request(method, url, json=json, params=params)
        if response.status_code == 429:
            error = self._error(response)
            self.context.pause(error.retry_after or 1.0)
            raise error
        return response

    def _token(self) -> str:
        credentials = self.config.credentials
        if credentials.get("token"):
            return credentials["token"]
        cached = self.context.cache_get(TOKEN_CACHE)
        if cached:
            return cached
        self.budget.take()
        url = f"{self.config.base_url.rstrip('/')}/rest/V1/integration/admin/token"
        try:
            response = session_for(self.config.id).post(
                url, json={"username": credentials.get("username", ""), "password": credentials.get("password", "")},
                headers={"Accept": "application/json"}, timeout=timeout_s(),
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        token = json_body(response) if 200 <= response.status_code < 300 else None
        if not isinstance(token, str) or not token:
            error = self._error(response) if not 200 <= response.status_code < 300 else None
            if error is not None and error.outcome in (Outcome.THROTTLED, Outcome.RETRY):
                if error.outcome is Outcome.THROTTLED:
                    self.context.pause(error.retry_after or 1.0)
                raise error
            # Wrong user or password (Magento answers 401, or 400 once it locks the account).
            raise CallError(Outcome.AUTH, error.code if error else "admin_token_refused",
                            error.message if error else "no token in the answer")
        ttl = float(self.setting("admin_token_ttl_s", 14400)) - TOKEN_MARGIN_S
        self.context.cache_set(TOKEN_CACHE, token, max(60.0, ttl))
        return token

    @staticmethod
    def _error(response: requests.Response) -> CallError:
        """Magento errors are `{"message": "... %1 ...", "parameters": [...] | {...}}`."""
        body = json_body(response)
        if isinstance(body, dict) and body.get("message"):
            message = render(str(body["message"]), body.get("parameters"))
            details = [render(str(e.get("message", "")), e.get("parameters")) for e in _error_items(body)]
            return status_error(response, f"http_{response.status_code}", "; ".join([message, *details]))
        return status_error(response)


def magento_time(value: datetime) -> str:
    """Magento's `YYYY-MM-DD HH:MM:SS`, in UTC (what `updated_at` filters compare with)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _error_items(body: dict) -> list[dict]:
    """The `errors` list of a validation failure (MSI lists one per refused source item)."""
    return [error for error in body.get("errors") or [] if isinstance(error, dict)]


def skus_named_in_error(body, candidates: set[str]) -> set[str]:
    """SKUs an error answer names, in its own parameters or in those of its `errors` list."""
    if not isinstance(body, dict):
        return set()
    named = skus_named(body.get("parameters"), candidates)
    for error in _error_items(body):
        named |= skus_named(error.get("parameters"), candidates)
    # A message may carry the SKU already filled in ("Product with SKU "X" does not exist").
    texts = [str(body.get("message", ""))] + [str(error.get("message", "")) for error in _error_items(body)]
    named |= {sku for sku in candidates for text in texts if f'"{sku}"' in text or f"'{sku}'" in text}
    return named
