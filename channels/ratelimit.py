"""A token bucket per channel in Redis, shared by every worker on every host.

Celery's own `rate_limit` is per worker and cannot hold a channel's limit globally. The bucket
is one Lua script, so taking tokens is atomic. It never sleeps: it answers how long to wait,
and the flush leaves its marks due at that time.
"""
from __future__ import annotations

from redis.exceptions import RedisError

from .redis_client import get_redis

# KEYS[1] bucket; ARGV: rate per second, burst, cost. Returns "0" when taken, else the wait in
# seconds. Time comes from Redis so every host agrees.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""

_script = None


def bucket_take(key: str, *, rate_per_s: float, burst: float, cost: float = 1.0) -> float:
    """Take `cost` tokens now if the bucket has them (returns 0.0), else return the seconds
    to wait. If Redis is unreachable the call is allowed: the channel's own 429s still slow us."""
    global _script
    try:
        if _script is None:
            _script = get_redis().register_script(_TAKE)
        return float(_script(keys=[f"syncsvc:bucket:{key}"], args=[rate_per_s, burst, cost], client=get_redis()))
    except RedisError:
        return 0.0
