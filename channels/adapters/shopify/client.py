"""One GraphQL POST to a shop, under the channel's global cost bucket.

Before each call the document's requested cost is taken from the bucket (`context.acquire`,
told what the call should spend after its refund, so refused calls queue at the restore rate);
a wait means we do not send. After each answer the bucket learns what Shopify reported
(`extensions.cost.throttleStatus`) and gets back what the call did not spend. Every way a call
can fail becomes a `ShopifyCallError` with its class (DESIGN 8); errors that name a path inside
a partial answer are left to the caller, which knows which SKU each path belongs to.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from django.conf import settings

from ..base import ChannelConfig, ChannelContext, Outcome
from ..http import retry_after_seconds, session_for
from .cost import expected_spend, requested_cost
from .errors import MaxCostExceeded, ShopifyCallError

DEFAULT_API_VERSION = "2026-10"
# Unknown wait after a THROTTLED answer without a usable bucket state (ShopifySharp waits 1 s).
THROTTLED_DEFAULT_WAIT_S = 1.0
_RETRYABLE_CODES = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT", "IDEMPOTENCY_CONCURRENT_REQUEST"}
_AUTH_CODES = {"ACCESS_DENIED", "UNAUTHORIZED", "FORBIDDEN"}


@dataclass(frozen=True)
class Answer:
    """A usable answer: `data`, and the errors scoped to a path inside it (partial results)."""

    data: dict
    errors: tuple[dict, ...] = ()
    cost: int = 0

    def field(self, name: str):
        """A root field of a query; a null one raises the error Shopify scoped to it."""
        value = self.data.get(name)
        if value is None:
            error = next((e for e in self.errors if (e.get("path") or [None])[0] == name), {"message": f"no {name} in the answer"})
            code = error_code(error)
            raise ShopifyCallError(error_outcome(code), code, str(error.get("message", "")))
        return value


def error_code(error: dict) -> str:
    return str((error.get("extensions") or {}).get("code") or "graphql_error")


def error_outcome(code: str) -> Outcome:
    """The class of a GraphQL error code (call-level or scoped to one field)."""
    if code in _RETRYABLE_CODES:
        return Outcome.RETRY
    if code in _AUTH_CODES:
        return Outcome.AUTH
    if code == "THROTTLED":
        return Outcome.THROTTLED
    return Outcome.PERMANENT


class ShopifyClient:
    """Posts documents to `{base_url}/admin/api/{api_version}/graphql.json`."""

    def __init__(self, config: ChannelConfig, context: ChannelContext):
        self.config = config
        self.context = context

    @property
    def endpoint(self) -> str:
        version = self.config.settings.get("api_version") or DEFAULT_API_VERSION
        return f"{self.config.base_url.rstrip('/')}/admin/api/{version}/graphql.json"

    def execute(self, document: str, variables: dict | None = None, *, then: int = 0) -> Answer:
        """Send one document; its answer, or `ShopifyCallError` saying why there is none.
        `then`: the cost of the call that must follow this one (sent only when the bucket
        holds both)."""
        cost = requested_cost(document, variables)
        wait = self.context.acquire(cost, spend=expected_spend(document, variables), then=then)
        if wait > 0:
            raise ShopifyCallError(Outcome.THROTTLED, "rate_limited", f"cost bucket needs {wait:.2f}s for {cost} points", wait)
        body = json.dumps({"query": document, "variables": variables or {}}, separators=(",", ":")).encode()
        try:
            response = self._post(body)
            if response.status_code in (401, 403):
                # An access token does not expire, so there is nothing to refresh; but a shop
                # behind a proxy or mid-reinstall answers a stray 401: one resend tells them apart.
                response = self._post(body)
        except requests.RequestException as exc:
            self.context.observe(refund=cost)
            raise ShopifyCallError(Outcome.RETRY, "network_error", str(exc)) from exc
        if response.status_code != 200:
            self.context.observe(refund=cost)  # refused before running: nothing was spent there
            raise self._http_error(response)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ShopifyCallError(Outcome.RETRY, "bad_response", response.text[:200]) from exc
        return self._answer(payload, cost)

    def _post(self, body: bytes) -> requests.Response:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Shopify-Access-Token": self.config.credentials.get("access_token", ""),
        }
        return session_for(self.config.id).post(
            self.endpoint, data=body, headers=headers, timeout=settings.SYNCSVC["HTTP_TIMEOUT_S"]
        )

    def _http_error(self, response: requests.Response) -> ShopifyCallError:
        status = response.status_code
        message = response.text[:500]
        if status == 429:
            retry_after = retry_after_seconds(response, THROTTLED_DEFAULT_WAIT_S)
            self.context.pause(retry_after)
            return ShopifyCallError(Outcome.THROTTLED, "http_429", message, retry_after)
        if status in (401, 403):
            return ShopifyCallError(Outcome.AUTH, f"http_{status}", message)
        if status in (402, 423):
            # Payment required (frozen shop) or locked shop: the account, not the item, is the
            # problem; alert and back off rather than give the items up.
            return ShopifyCallError(Outcome.AUTH, f"http_{status}", message)
        if status >= 500 or status in (408, 409, 425):
            return ShopifyCallError(Outcome.RETRY, f"http_{status}", message, retry_after_seconds(response))
        return ShopifyCallError(Outcome.PERMANENT, f"http_{status}", message)

    def _answer(self, payload: dict, cost: int) -> Answer:
        report = ((payload.get("extensions") or {}).get("cost")) or {}
        status = report.get("throttleStatus") or {}
        actual = report.get("actualQueryCost")
        self.context.observe(
            available=status.get("currentlyAvailable"),
            maximum=status.get("maximumAvailable"),
            restore_rate=status.get("restoreRate"),
            # A throttled call (actual cost null) spent nothing; otherwise keep what it spent.
            refund=float(cost - actual) if actual is not None else float(cost),
        )
        errors = tuple(payload.get("errors") or ())
        codes = [error_code(error) for error in errors]
        if "THROTTLED" in codes:
            raise ShopifyCallError(Outcome.THROTTLED, "THROTTLED", "Shopify throttled the call", _throttled_wait(report, cost))
        if "MAX_COST_EXCEEDED" in codes:
            raise MaxCostExceeded(errors[codes.index("MAX_COST_EXCEEDED")].get("message", ""))
        data = payload.get("data")
        call_level = [error for error in errors if not error.get("path")]
        if data is None or call_level:
            error = (call_level or errors or ({"message": "answer without data"},))[0]
            code = error_code(error)
            raise ShopifyCallError(error_outcome(code), code, str(error.get("message", "")))
        return Answer(data, errors, cost)


def _throttled_wait(report: dict, cost: int) -> float:
    """Seconds until the bucket holds this call's cost: (cost - available) / restore rate."""
    status = report.get("throttleStatus") or {}
    available, rate = status.get("currentlyAvailable"), status.get("restoreRate")
    requested = report.get("requestedQueryCost") or cost
    if available is None or not rate:
        return THROTTLED_DEFAULT_WAIT_S
    wait = (float(requested) - float(available)) / float(rate)
    return wait if wait > 0 else THROTTLED_DEFAULT_WAIT_S
