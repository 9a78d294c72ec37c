"""Wake-ups: the broker carries them, the database holds the work.

A wake-up is deduplicated with a short-lived Redis flag, cleared when the flush starts, so a
burst of commits enqueues one flush, and a change landing during a flush enqueues the next.
Losing a wake-up (a Redis restart, a purged queue, a broker outage at commit time) costs one
sweep interval of delay, never an update: the sweep re-wakes every channel with due marks.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from .redis_client import get_redis
from .routing import flush_queue

log = logging.getLogger(__name__)

def flag_claim(key: str, ttl_s: float) -> bool:
    """Set a short-lived Redis flag unless it is set; True when this caller set it (and should
    queue the work). Raises RedisError: the caller decides what a missing Redis means."""
    return bool(get_redis().set(key, "1", nx=True, ex=max(1, int(ttl_s))))


def flags_clear(*keys: str) -> None:
    """Clear flags (one call); a Redis error is logged: the flag expires by itself."""
    try:
        get_redis().delete(*keys)
    except RedisError as exc:
        log.warning("flags %s not cleared: %s", ", ".join(keys), exc)


def _flag(channel_id: int, *, delayed: bool = False) -> str:
    return f"syncsvc:wake:{'later:' if delayed else ''}{channel_id}"


def wake_channel(channel_id: int, *, countdown: float = 0.0) -> bool:
    """Enqueue a flush of the channel, on its queue (`channels.routing`), unless one is
    already queued. Never raises: a wake-up that fails to send is recovered by the sweep."""
    from .tasks import flush

    delayed = countdown > 0
    try:
        ttl = settings.SYNCSVC["WAKE_FLAG_TTL_S"] + (int(countdown) if delayed else 0)
        if not flag_claim(_flag(channel_id, delayed=delayed), ttl):
            return False
        queue = flush_queue(channel_id)  # after the flag: one read per flush sent, not per commit
        if queue is None:
            wake_flag_clear(channel_id, delayed=delayed)
            return False
        flush.apply_async(args=(channel_id,), kwargs={"enqueued_at": time.time()}, countdown=countdown or None,
                          queue=queue)
        return True
    except (RedisError, OperationalError) as exc:
        log.warning("wake-up for channel %s not sent (%s); the sweep will deliver", channel_id, exc)
        return False


def wake_flag_clear(channel_id: int, *, delayed: bool = False, both: bool = False) -> None:
    """Clear the channel's wake flag (`both`: the immediate and the delayed one, in one call)."""
    flags_clear(*([_flag(channel_id), _flag(channel_id, delayed=True)] if both else [_flag(channel_id, delayed=delayed)]))
