"""The `ChannelContext` adapters get: global adaptive rate limits and a shared, encrypted
cache (access tokens), both in Redis, keyed by channel."""
from __future__ import annotations

import logging

from cryptography.fernet import InvalidToken
from redis.exceptions import RedisError

from .crypto import fernet
from .ratelimit import bucket_observe, bucket_pause, bucket_take
from .redis_client import get_redis

log = logging.getLogger(__name__)


class RedisChannelContext:
    def __init__(self, channel_id: int, buckets: dict[str, tuple[float, float]]):
        """`buckets`: name -> (rate per second, burst) defaults, before the channel says more."""
        self.channel_id = channel_id
        self.buckets = buckets

    def _limits(self, bucket: str) -> dict:
        rate, burst = self.buckets.get(bucket) or self.buckets["default"]
        return {"rate_per_s": rate, "burst": burst}

    def _key(self, bucket: str) -> str:
        return f"{self.channel_id}:{bucket}"

    def acquire(
        self, cost: float = 1.0, *, bucket: str = "default", spend: float | None = None, then: float = 0.0
    ) -> float:
        return bucket_take(self._key(bucket), cost=cost, spend=spend, then=then, **self._limits(bucket))

    def observe(self, *, bucket="default", available=None, maximum=None, restore_rate=None, refund=0.0) -> None:
        bucket_observe(
            self._key(bucket), available=available, maximum=maximum, restore_rate=restore_rate, refund=refund,
            **self._limits(bucket),
        )

    def pause(self, seconds: float, *, bucket: str = "default") -> None:
        bucket_pause(self._key(bucket), seconds=seconds, **self._limits(bucket))

    def _cache_key(self, name: str) -> str:
        return f"syncsvc:cache:{self.channel_id}:{name}"

    def cache_get(self, name: str) -> str | None:
        try:
            value = get_redis().get(self._cache_key(name))
            return fernet().decrypt(value).decode() if value else None
        except (RedisError, InvalidToken) as exc:
            log.warning("channel %s cache %s unreadable: %s", self.channel_id, name, exc.__class__.__name__)
            return None

    def cache_set(self, name: str, value: str, ttl_s: float) -> None:
        try:
            get_redis().set(self._cache_key(name), fernet().encrypt(value.encode()), px=max(1, int(ttl_s * 1000)))
        except RedisError as exc:
            log.warning("channel %s cache %s not stored: %s", self.channel_id, name, exc.__class__.__name__)

    def cache_delete(self, name: str) -> None:
        try:
            get_redis().delete(self._cache_key(name))
        except RedisError:
            pass
