"""Redis clients, one per purpose per process (a forked worker child must not reuse its
parent's sockets); the project's one place that opens connections to `REDIS_URL`."""
from __future__ import annotations

import os

import redis
from django.conf import settings

_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_for(purpose: str, *, timeout_s: float, connect_timeout_s: float) -> redis.Redis:
    key = (os.getpid(), purpose)
    client = _clients.get(key)
    if client is None:
        if any(pid != key[0] for pid, _ in _clients):
            _clients.clear()  # forked: the parent's clients are not ours
        client = _clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout_s, socket_connect_timeout=connect_timeout_s
        )
    return client
