"""SP-API usage plans: a token bucket per operation per store, and the call statistics.

SP-API throttles with a token bucket per operation per selling partner and application: the
bucket holds up to `burst` requests and refills at `rate` requests per second; a request that
finds it empty gets 429 `QuotaExceeded`. `x-amzn-RateLimit-Limit` carries the rate applied.
Default rates and bursts are the usage plan tables of the official models
(listingsItems_2021-08-01.json, feeds_2021-06-30.json); every one is a store setting, since
Amazon raises them per seller and has changed them over time (older docs: patch burst 10).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UsagePlan:
    """Default rate and burst of one operation, and the config keys that override them."""

    rate_key: str
    default_rate: float
    burst_key: str
    default_burst: float


VALIDATION_PREVIEW_PLAN = UsagePlan("validation_preview_rate_per_s", 1.0, "validation_preview_burst", 1.0)

USAGE_PLANS: dict[str, UsagePlan] = {
    # Listings Items 2021-08-01. The brief for this sandbox said burst 5 for GET; the official
    # model says 5 rps burst 10 for getListingsItem and putListingsItem, and that is the default.
    "getListingsItem": UsagePlan("get_rate_per_s", 5.0, "get_burst", 10.0),
    "patchListingsItem": UsagePlan("patch_rate_per_s", 5.0, "patch_burst", 5.0),
    "putListingsItem": UsagePlan("put_rate_per_s", 5.0, "put_burst", 10.0),
    "deleteListingsItem": UsagePlan("delete_rate_per_s", 5.0, "delete_burst", 5.0),
    # mode=VALIDATION_PREVIEW is documented at 1 request per second, its own plan.
    "patchListingsItem:VALIDATION_PREVIEW": VALIDATION_PREVIEW_PLAN,
    "putListingsItem:VALIDATION_PREVIEW": VALIDATION_PREVIEW_PLAN,
    # Feeds 2021-06-30.
    "createFeedDocument": UsagePlan("create_feed_document_rate_per_s", 0.5, "create_feed_document_burst", 15.0),
    "createFeed": UsagePlan("create_feed_rate_per_s", 0.0083, "create_feed_burst", 15.0),
    "getFeed": UsagePlan("get_feed_rate_per_s", 2.0, "get_feed_burst", 15.0),
    "cancelFeed": UsagePlan("cancel_feed_rate_per_s", 2.0, "cancel_feed_burst", 15.0),
    "getFeedDocument": UsagePlan("get_feed_document_rate_per_s", 0.0222, "get_feed_document_burst", 10.0),
}

RATE_CONFIG_KEYS = frozenset(key for plan in USAGE_PLANS.values() for key in (plan.rate_key, plan.burst_key))


def rate_header(rate: float) -> str:
    """The `x-amzn-RateLimit-Limit` value as SP-API prints it ("5.0", "0.0083")."""
    return repr(float(rate))


@dataclass
class TokenBucket:
    """`burst` tokens at most, refilled continuously at `rate` per second; starts full."""

    rate: float
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means throttled."""
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class OperationStats:
    calls: int = 0
    throttled: int = 0


@dataclass
class Throttle:
    """The buckets and counters of one store. Not locked itself: the store's lock guards it."""

    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    stats: dict[str, OperationStats] = field(default_factory=dict)

    def admit(self, operation: str, rate: float, burst: float, now: float) -> bool:
        """Count the call and take a token from the operation's bucket; False means 429."""
        bucket = self.buckets.get(operation)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            # A changed plan starts full, as a seller's raised limit would.
            bucket = self.buckets[operation] = TokenBucket.full(rate, burst, now)
        stats = self.stats.setdefault(operation, OperationStats())
        stats.calls += 1
        if bucket.take(now):
            return True
        stats.throttled += 1
        return False

    def view(self) -> dict[str, Any]:
        return {
            "calls": sum(stats.calls for stats in self.stats.values()),
            "throttled": sum(stats.throttled for stats in self.stats.values()),
            "by_operation": {
                operation: {"calls": stats.calls, "throttled": stats.throttled}
                for operation, stats in sorted(self.stats.items())
            },
        }
