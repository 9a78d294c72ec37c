"""A host's own request limit in front of WooCommerce (wc/v3 documents none of its own).

Hosts (nginx `limit_req`, Cloudflare, managed WordPress plans) answer 429 with `Retry-After`
before WordPress runs, so the check comes before authentication and its body is the
sandbox's plain error, not a WordPress one.
"""

from __future__ import annotations

import math


class TokenBucket:
    """`rate` tokens per second up to `burst`; not locked itself (the store's lock guards it)."""

    def __init__(self) -> None:
        self._tokens: float | None = None
        self._updated_at = 0.0

    def take(self, rate: float, burst: float, now: float) -> int | None:
        """Spend one token; None if allowed, else the whole seconds until one is back."""
        if self._tokens is None:
            self._tokens = burst
        else:
            self._tokens = min(burst, self._tokens + (now - self._updated_at) * rate)
        self._updated_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / rate))
