"""What the REST adapters (WooCommerce, Magento, Amazon) share: one result per item filled in
as calls answer, the error that stops a push or a read, and how an HTTP status maps to an
outcome (DESIGN 8).

A push sends several calls in turn. When one of them is throttled, refused or fails in a way
that will fail the next ones too, the adapter raises `CallError`; `PushResults.finish` gives
that outcome to every item not answered yet, so nothing is sent after the channel said stop.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

import requests
from django.conf import settings

from .base import ChannelContext, ChannelThrottled, Outcome, PolledOrder, PushItem, PushResult
from .http import retry_after_seconds

log = logging.getLogger(__name__)

# Statuses worth trying again as they are: timeouts, conflicts with a concurrent write, "too early".
_RETRYABLE_4XX = frozenset({408, 409, 425})


class CallError(Exception):
    """A call whose answer settles every item it carried and every item not sent yet."""

    def __init__(self, outcome: Outcome, code: str, message: str = "", retry_after: float | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.outcome = outcome
        self.code = code
        self.message = message[:500]
        self.retry_after = retry_after

    @classmethod
    def throttled(cls, wait: float, code: str = "rate_limited", message: str = "") -> CallError:
        return cls(Outcome.THROTTLED, code, message, wait)

    def for_read(self) -> Exception:
        """What `fetch` raises: ChannelThrottled when it is a matter of time, else itself."""
        if self.outcome is Outcome.THROTTLED:
            return ChannelThrottled(self.retry_after or 1.0, self.message or self.code)
        return self


def order_pages_walk(fetch_page: Callable[[int], tuple[list[PolledOrder], bool]], *, max_pages: int,
                     channel: str) -> list[PolledOrder]:
    """The orders of pages 1..`max_pages` of an order list, oldest first; `fetch_page(page)`
    answers a page's orders and whether it was the last.

    A page the rate limit refuses ends the walk with what the pages before it held, so the
    poll's cursor moves on and the next poll goes on from there: the pushes share the bucket,
    and a walk that had to win it for every page at once could fail on every poll of a busy
    day and never book an order. Refused on its first page, the poll raises ChannelThrottled;
    a failing channel raises the read's error."""
    orders: list[PolledOrder] = []
    for page in range(1, max_pages + 1):
        try:
            rows, last = fetch_page(page)
        except CallError as error:
            if error.outcome is Outcome.THROTTLED and orders:
                log.info("%s: order poll throttled at page %d; the next poll goes on", channel, page)
                return orders
            raise error.for_read() from None
        orders.extend(rows)
        if last:
            return orders
    log.warning("%s: the order poll read its %d pages; more orders changed since its cursor than "
                "one poll reads", channel, max_pages)
    return orders


class CallBudget:
    """Tokens from the channel's buckets, taken a call at a time, or reserved together for a
    read that needs several calls at once: a read retried call by call while the bucket
    refills could starve, each try spending the first token and failing on the next."""

    def __init__(self, context: ChannelContext):
        self.context = context
        self.reserved: dict[str, int] = {}

    def take(self, bucket: str = "default") -> None:
        """One call's token (from a reservation if any); CallError THROTTLED when none."""
        if self.reserved.get(bucket, 0) > 0:
            self.reserved[bucket] -= 1
            return
        wait = self.context.acquire(1, bucket=bucket)
        if wait > 0:
            raise CallError.throttled(wait)

    def reserve(self, calls: int, bucket: str = "default") -> None:
        """Take `calls` tokens at once (at most the bucket's burst) or none."""
        self.release(bucket)
        wait = self.context.acquire(calls, bucket=bucket) if calls > 0 else 0.0
        if wait > 0:
            raise CallError.throttled(wait)
        self.reserved[bucket] = calls

    def release(self, bucket: str | None = None) -> None:
        """Give back what a reservation did not spend."""
        for name in [bucket] if bucket else list(self.reserved):
            left = self.reserved.pop(name, 0)
            if left > 0:
                self.context.observe(bucket=name, refund=left)


def timeout_s() -> float:
    return settings.SYNCSVC["HTTP_TIMEOUT_S"]


def network_error(exc: requests.RequestException) -> CallError:
    return CallError(Outcome.RETRY, "network_error", f"{exc.__class__.__name__}: {exc}")


def status_outcome(status: int) -> Outcome:
    """How a non-2xx status is classified before any channel-specific reading of the body."""
    if status == 429:
        return Outcome.THROTTLED
    if status in (401, 403):
        return Outcome.AUTH
    if status >= 500 or status in _RETRYABLE_4XX:
        return Outcome.RETRY
    return Outcome.PERMANENT


def status_error(response: requests.Response, code: str = "", message: str = "") -> CallError:
    """A CallError for a failed answer, with the channel's own code and message when given."""
    status = response.status_code
    outcome = status_outcome(status)
    retry_after = retry_after_seconds(response, 1.0 if outcome is Outcome.THROTTLED else None)
    return CallError(outcome, code or f"http_{status}", message or response.text[:500], retry_after)


def json_body(response: requests.Response):
    """The decoded JSON answer, or None when the body is not JSON (an HTML error page)."""
    try:
        return response.json()
    except ValueError:
        return None


def money(value: Decimal) -> str:
    """A price as a plain decimal string with at least two places ("12.50", "0.125")."""
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")  # never exponent notation ("1E+1")


def float_money(value: Decimal) -> float:
    """A price for APIs that take JSON numbers; prices have few digits, so a float is exact enough."""
    return float(value)


class PushResults:
    """One result per item, keyed by (SKU, aspect) as flush maps them back."""

    def __init__(self, items: Sequence[PushItem]):
        self.items = list(items)
        self._results: dict[tuple[str, str], PushResult] = {}
        self._resolved: dict[str, dict] = {}

    def resolved(self, sku: str, external_ids: dict) -> None:
        """Ids found for a SKU in this push: every result of the SKU carries them, whatever
        becomes of its write, so the next push need not look it up again."""
        self._resolved[sku] = external_ids

    def answered(self, item: PushItem) -> bool:
        return (item.sku, item.aspect) in self._results

    def pending(self) -> list[PushItem]:
        return [item for item in self.items if not self.answered(item)]

    def set(self, item: PushItem, outcome: Outcome, code: str = "", message: str = "", *,
            retry_after: float | None = None, external_ids: dict | None = None, listed: bool | None = None) -> None:
        acknowledged_at = datetime.now(timezone.utc) if outcome is Outcome.OK else None
        if external_ids is None:
            external_ids = self._resolved.get(item.sku)
        self._results[(item.sku, item.aspect)] = PushResult(
            item.sku, item.aspect, outcome, code, message[:500], retry_after, acknowledged_at, external_ids, listed,
        )

    def ok(self, item: PushItem) -> None:
        self.set(item, Outcome.OK, listed=True)

    def fail(self, items: Sequence[PushItem], error: CallError) -> None:
        for item in items:
            if not self.answered(item):
                self.set(item, error.outcome, error.code, error.message, retry_after=error.retry_after)

    def finish(self, error: CallError | None = None) -> list[PushResult]:
        """Results in item order; items never answered get `error` (a push that stopped)."""
        if error is not None:
            self.fail(self.items, error)
        missing = self.pending()
        if missing:  # a bug, not a channel answer: say so rather than dropping the item
            self.fail(missing, CallError(Outcome.RETRY, "not_answered", "no answer was recorded for this item"))
        return [self._results[(item.sku, item.aspect)] for item in self.items]


def unsupported(results: PushResults, items: Sequence[PushItem], aspects: frozenset[str], kind: str) -> list[PushItem]:
    """Answer items of aspects the kind cannot deliver (PERMANENT); return the others."""
    kept = []
    for item in items:
        if item.aspect not in aspects:
            results.set(item, Outcome.PERMANENT, "unsupported_aspect", f"a {kind} channel does not take {item.aspect!r}")
        elif item.aspect == "price" and item.price is None:
            results.set(item, Outcome.PERMANENT, "missing_price", "the SKU has no price to send")
        elif item.aspect == "inventory" and item.available is None:
            results.set(item, Outcome.PERMANENT, "missing_quantity", "the SKU has no quantity to send")
        else:
            kept.append(item)
    return kept


def chunks(values: Sequence, size: int) -> list[list]:
    return [list(values[start:start + size]) for start in range(0, len(values), max(1, size))]
