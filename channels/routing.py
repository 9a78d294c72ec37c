"""Per-channel routing: the queue a channel's flushes are sent to.

Every channel's flushes go to the shared `sync` queue unless its settings name a dedicated
one, `"sync_queue": "sync.<label>"`. A big channel then gets workers of its own
(`celery -A syncsvc worker -Q sync.<label>`, on as many hosts as it needs), and a slow one
cannot take the shared pool's slots. The channel's rate limit stays global either way (in
Redis, `channels/ratelimit.py`), so adding workers to a queue never exceeds it.

The route is read when a flush is sent (one primary-key read per wake-up that sends, never
per change: wake-ups are deduplicated first), so a changed route applies to the next flush;
a flush already waiting on the old queue still runs there, and does no harm (a flush is
idempotent). A dedicated queue with no worker leaves its channel's updates owed, not lost:
they go out when a worker consumes it. Until then `/health/` names the queue (the channels app
registers `dedicated_sync_queues` with `syncsvc.heartbeats.add_routed_queues`), and the
queue-length metric counts what waits there.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from django.db import DatabaseError

from .models import Channel

log = logging.getLogger(__name__)

SHARED_SYNC_QUEUE = "sync"
SETTING = "sync_queue"
# `sync.` then a label: a typo cannot send flushes to another domain's queue (maintenance,
# inbound, bulk), and `celery -Q 'sync.*'`-style listings stay readable.
_DEDICATED = re.compile(r"sync\.[a-z0-9][a-z0-9_.-]{0,62}")


def routing_settings_errors(settings: Mapping) -> dict[str, str]:
    """What is wrong with a channel's routing setting, by setting name."""
    queue = settings.get(SETTING)
    if queue is None or queue == SHARED_SYNC_QUEUE:
        return {}
    if not isinstance(queue, str) or not _DEDICATED.fullmatch(queue):
        return {SETTING: f"must be {SHARED_SYNC_QUEUE!r} or 'sync.<label>' (lower-case letters, digits, '.', '_', '-')"}
    return {}


def flush_queue(channel_id: int) -> str | None:
    """The queue the channel's flushes go to: its dedicated queue, else `sync`. None when the
    database cannot say (the caller sends nothing; the sweep wakes the channel later, on the
    right queue). A channel that is gone gets `sync`: its flush returns at once there."""
    try:
        settings = Channel.objects.filter(pk=channel_id).values_list("settings", flat=True).first()
    except DatabaseError as exc:
        log.warning("route of channel %s unreadable (%s); its wake-up is left to the sweep", channel_id, exc)
        return None
    queue = (settings or {}).get(SETTING)
    return queue if isinstance(queue, str) and queue and not routing_settings_errors(settings) else SHARED_SYNC_QUEUE


def dedicated_sync_queues() -> list[str]:
    """The dedicated flush queues channels are routed to now (each needs a worker)."""
    routed = Channel.objects.filter(settings__has_key=SETTING).values_list("settings", flat=True)
    return sorted({s[SETTING] for s in routed if s[SETTING] != SHARED_SYNC_QUEUE and not routing_settings_errors(s)})
