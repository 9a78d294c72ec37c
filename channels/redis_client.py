"""The shared Redis connection (wake-up flags, rate-limit buckets), one pool per process."""
from __future__ import annotations

import os

import redis
from django.conf import settings

_clients: dict[int, redis.Redis] = {}


def get_redis() -> redis.Redis:
    pid = os.getpid()  # a forked worker child must not reuse its parent's sockets
    client = _clients.get(pid)
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        _clients.clear()
        _clients[pid] = client
    return client
