"""The leaky bucket Shopify meters GraphQL Admin API calls with, one per app and store.

Points refill continuously at the plan's restore rate up to the bucket size. A query is
charged its requested cost before it runs and refunded the difference to its actual cost
after; when the bucket holds less than the requested cost the query is THROTTLED and nothing
is charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# shopify.dev, "GraphQL Admin API rate limits" (2025): points restored per second by plan.
RESTORE_RATE_BY_PLAN: dict[str, float] = {
    "standard": 100.0,
    "advanced": 200.0,
    "plus": 1000.0,
    "commerce_components": 2000.0,
}
DEFAULT_PLAN = "standard"
# Shopify's plan names as merchants know them, onto the rate-limit tiers above.
PLAN_ALIASES: dict[str, str] = {
    "basic": "standard",
    "shopify": "standard",
    "grow": "standard",
    "advanced_shopify": "advanced",
    "shopify_plus": "plus",
    "enterprise": "commerce_components",
}
DEFAULT_BUCKET_SIZE = 2000.0
# Shopify refuses any single query above 1,000 points, whatever the bucket holds.
DEFAULT_MAX_QUERY_COST = 1000


@dataclass(frozen=True)
class BucketSettings:
    size: float
    restore_rate: float
    max_query_cost: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BucketSettings:
        plan = config.get("plan") or DEFAULT_PLAN
        restore_rate = config.get("restore_rate") or RESTORE_RATE_BY_PLAN.get(plan, RESTORE_RATE_BY_PLAN[DEFAULT_PLAN])
        size = float(config.get("bucket_size") or DEFAULT_BUCKET_SIZE)
        # A query bigger than the whole bucket could never run, so it is refused outright too.
        max_query_cost = min(int(config.get("max_query_cost") or DEFAULT_MAX_QUERY_COST), int(size))
        return cls(size=size, restore_rate=float(restore_rate), max_query_cost=max_query_cost)


class LeakyBucket:
    """Points available to one store's API client; the store's lock guards it."""

    def __init__(self, settings: BucketSettings, now: float) -> None:
        self.settings = settings
        self._available = settings.size
        self._updated_at = now

    def reconfigure(self, settings: BucketSettings, now: float) -> None:
        """Take new plan settings, keeping what is available (capped at the new size)."""
        if settings == self.settings:
            return
        self._refill(now)
        self.settings = settings
        self._available = min(self._available, settings.size)

    def available(self, now: float) -> float:
        self._refill(now)
        return self._available

    def try_take(self, points: int, now: float) -> bool:
        """Charge `points` if the bucket holds them; False (and no charge) otherwise."""
        self._refill(now)
        if points > self._available:
            return False
        self._available -= points
        return True

    def refund(self, points: int, now: float) -> None:
        self._refill(now)
        self._available = min(self.settings.size, self._available + max(points, 0))

    def status(self, now: float) -> dict[str, Any]:
        """`extensions.cost.throttleStatus` as Shopify sends it (floats for the plan figures)."""
        return {
            "maximumAvailable": float(self.settings.size),
            "currentlyAvailable": int(self.available(now)),
            "restoreRate": float(self.settings.restore_rate),
        }

    def _refill(self, now: float) -> None:
        elapsed = max(now - self._updated_at, 0.0)
        self._available = min(self.settings.size, self._available + elapsed * self.settings.restore_rate)
        self._updated_at = now
