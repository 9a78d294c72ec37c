"""Adaptive token buckets per channel in Redis, shared by every worker on every host.

Celery's own `rate_limit` is per worker and cannot hold a channel's limit globally. Each
operation is one Lua script, so it is atomic; time comes from Redis so every host agrees.
Nothing here sleeps: `take` answers how long to wait, and the caller leaves its work due then.

Adaptive: `observe` lowers our count to what the channel reports it has left (never raises it:
requests still in flight are already charged here but not yet there), adopts the channel's
reported bucket size and restore rate, and credits refunds (Shopify charges the requested
cost up front and refunds the unspent part). `pause` stops everyone until a Retry-After ends.

Refused calls queue up: each is told to come back when the bucket will have refilled what
the calls refused before it will spend, not just its own cost. Without that, every refused
batch of a backlog is told the same moment, all come back together, one is sent and the rest
are refused again: a flusher re-claiming the whole backlog once per refill (10,000 price
changes into a Shopify Standard plan, benchmarks/shopify_burst.py: 71,500 items held back in
326 pushes, vs 8,500 in 74 with the queue; same drain). `spend` is what a call keeps after
its refund (Shopify: the actual cost), so the queue moves at the restore rate, not slower. A
full bucket means nobody is waiting any more and forgets the queue.
"""
from __future__ import annotations

from redis.exceptions import RedisError

from .redis_client import get_redis

_REFILL = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'rate', 'capacity', 'paused_until', 'queued_until')
local rate = tonumber(state[3]) or tonumber(ARGV[1])
local capacity = tonumber(state[4]) or tonumber(ARGV[2])
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local paused_until = tonumber(state[5]) or 0
local queued_until = tonumber(state[6]) or 0
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
"""

_SAVE = """
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now), 'rate', tostring(rate),
           'capacity', tostring(capacity), 'paused_until', tostring(paused_until),
           'queued_until', tostring(queued_until))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 3600)
"""

# A call short of at most this much refill is told its own wait and does not join the queue:
# a queued call coming back on its turn finds our count a point or two under the channel's
# (rounding, and the time an answer takes to reach us); at the back of the queue it would lose
# its turn.
QUEUE_GRACE_S = 0.1

# ARGV: default rate, default capacity, cost, spend|'', then. Returns the wait in seconds ("0"
# when taken). `need` is what the bucket must hold for the call to go: its cost and the cost
# of the call that must follow it (`then`).
_TAKE = _REFILL + """
local cost = math.min(tonumber(ARGV[3]), capacity)
local spend = math.min(tonumber(ARGV[4]) or cost, cost)
local follow = tonumber(ARGV[5]) or 0
local need = math.min(cost + follow, capacity)
local wait = 0
if tokens >= capacity then queued_until = 0 end
if paused_until > now then
  wait = paused_until - now
elseif tokens >= need then
  tokens = tokens - cost
elseif (need - tokens) / rate <= """ + repr(QUEUE_GRACE_S) + """ then
  wait = (need - tokens) / rate
else
  local ready = now + (need - tokens) / rate
  if queued_until > now then ready = math.max(ready, queued_until + (spend + follow) / rate) end
  queued_until = ready
  wait = ready - now
end
""" + _SAVE + "return tostring(wait)"

# ARGV: default rate, default capacity, available|'', maximum|'', restore rate|'', refund
_OBSERVE = _REFILL + """
if ARGV[4] ~= '' then capacity = tonumber(ARGV[4]) end
if ARGV[5] ~= '' then rate = tonumber(ARGV[5]) end
tokens = math.min(capacity, tokens + tonumber(ARGV[6]))
if ARGV[3] ~= '' then tokens = math.min(tokens, tonumber(ARGV[3])) end
""" + _SAVE + "return tostring(tokens)"

# ARGV: default rate, default capacity, seconds
_PAUSE = _REFILL + """
paused_until = math.max(paused_until, now + tonumber(ARGV[3]))
tokens = 0
""" + _SAVE + "return tostring(paused_until)"

_scripts: dict[str, object] = {}


def _run(name: str, source: str, key: str, args: list) -> str | None:
    try:
        client = get_redis()
        script = _scripts.get(name)
        if script is None:
            script = _scripts[name] = client.register_script(source)
        return script(keys=[f"syncsvc:bucket:{key}"], args=args, client=client)
    except RedisError:
        return None


def bucket_take(
    key: str, *, rate_per_s: float, burst: float, cost: float = 1.0, spend: float | None = None, then: float = 0.0,
) -> float:
    """Take `cost` tokens now if the bucket has them (returns 0.0), else the seconds to wait:
    until the bucket holds `cost` after the calls refused before this one have each taken what
    they spend (`spend`: what a call keeps after its refund; `cost` when unknown).

    `then`: the cost of a call that is useless without this one and follows it at once (a
    stock write after the read it compares with). The call goes only when the bucket holds
    both, so a read is never spent on a write that must then wait: a flush that read, was
    refused the write, and came back to read again would spend the write's points on the read
    every time, and never write.

    If Redis is unreachable the call is allowed: the channel's own throttling still slows us."""
    answer = _run("take", _TAKE, key, [rate_per_s, burst, cost, "" if spend is None else spend, then])
    return float(answer) if answer is not None else 0.0


def bucket_observe(
    key: str, *, rate_per_s: float, burst: float, available: float | None = None,
    maximum: float | None = None, restore_rate: float | None = None, refund: float = 0.0,
) -> None:
    def arg(value):
        return "" if value is None else value

    _run("observe", _OBSERVE, key, [rate_per_s, burst, arg(available), arg(maximum), arg(restore_rate), refund])


def bucket_pause(key: str, *, rate_per_s: float, burst: float, seconds: float) -> None:
    _run("pause", _PAUSE, key, [rate_per_s, burst, seconds])


# ARGV: default rate, default capacity. Reads without taking: returns tokens, capacity, rate.
_LEVEL = _REFILL + """
if paused_until > now then tokens = 0 end
return {tostring(tokens), tostring(capacity), tostring(rate)}
"""


def bucket_level(key: str, *, rate_per_s: float, burst: float) -> tuple[float, float, float] | None:
    """(tokens now, capacity, restore rate) of a bucket, without taking any; None when Redis
    is unreachable. Lets low-priority work (a catalog refresh) leave the bucket to urgent work."""
    answer = _run("level", _LEVEL, key, [rate_per_s, burst])
    if answer is None:
        return None
    tokens, capacity, rate = (float(value) for value in answer)
    return tokens, capacity, rate
