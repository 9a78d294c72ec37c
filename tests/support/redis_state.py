"""The test Redis's syncsvc keys (rate-limit buckets, caches, counters, heartbeats, wake-up
flags), forgotten between tests and runs."""
from __future__ import annotations


def syncsvc_state_forget(*, keep: bytes | None = None) -> None:
    """Delete every `syncsvc:*` key of the test Redis but those starting with `keep`."""
    from channels.redis_client import get_redis

    redis = get_redis()
    for key in redis.scan_iter("syncsvc:*"):
        if keep is None or not key.startswith(keep):
            redis.delete(key)
