"""The shared Redis connection (wake-up flags, rate-limit buckets), one pool per process."""
from __future__ import annotations

import redis

from syncsvc.redis_clients import redis_for


def get_redis() -> redis.Redis:
    return redis_for("default", timeout_s=5, connect_timeout_s=2)
