"""Liveness and readiness: the database and Redis answer."""
from __future__ import annotations

import os

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

_redis: dict[int, object] = {}  # one client (and its connection pool) per process, not per request


def _redis_client():
    import redis

    pid = os.getpid()  # a forked worker must not share its parent's sockets
    client = _redis.get(pid)
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        _redis.clear()
        _redis[pid] = client
    return client


def health(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready; say which
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        _redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
