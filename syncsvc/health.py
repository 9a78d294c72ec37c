"""Liveness and readiness.

`/health/` (readiness): the database and Redis answer, a live Celery worker consumes every
queue the app routes to, and beat's heartbeat is fresh. 200 when all are ok, else 503 naming
what failed. `/health/live/` (or `?live=1`): the process answers, nothing else is asked, so an
orchestrator does not restart the web on a database blip.

syncsvc knows nothing of the apps (imports run channels -> inventory -> syncsvc): every check
here reads only the database connection, Redis and the heartbeats (syncsvc/heartbeats.py); the
queues an app routes to beyond the settings' (a channel's own `sync.<label>`) it registers
with `heartbeats.add_routed_queues`, one query a request.
"""
from __future__ import annotations

import redis
from django.db import Error, connection
from django.http import JsonResponse

from .heartbeats import heartbeats_read, redis_client, routed_queues, stale_after_s


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _workers(heartbeats) -> str:
    if not heartbeats.workers:
        return f"error: no worker heartbeat in the last {stale_after_s():.0f} s"
    consumed = {queue for queues in heartbeats.workers.values() for queue in queues}
    missing = sorted(routed_queues() - consumed)
    if missing:
        return f"error: no live worker consumes {', '.join(missing)}"
    return "ok"


def _beat(heartbeats) -> str:
    age = heartbeats.beat_age_s
    if age is None:
        return "error: no beat heartbeat yet"
    if age > stale_after_s():
        # The heartbeat task runs on the maintenance queue: beat stopped, or that queue is stuck.
        return f"error: last beat heartbeat {age:.0f} s ago (stale after {stale_after_s():.0f} s)"
    return "ok"


def health(request, live: bool = False):
    if live or request.GET.get("live") in ("1", "true"):
        return JsonResponse({"status": "ok", "checks": {"process": "ok"}})
    checks: dict[str, str] = {}
    details: dict[str, object] = {}
    try:
        checks["database"] = _database()
    except Error as exc:  # any driver error (InterfaceError too) means not ready; say which
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        heartbeats = heartbeats_read(redis_client())  # its answer is Redis's ping
        checks["redis"] = "ok"
        details = {"workers": sorted(heartbeats.workers), "beat_age_s": heartbeats.beat_age_s}
        checks["workers"] = _workers(heartbeats)
        checks["beat"] = _beat(heartbeats)
    except redis.RedisError as exc:
        checks.setdefault("redis", f"error: {exc.__class__.__name__}")
        checks.setdefault("workers", "unknown: Redis unavailable")
        checks.setdefault("beat", "unknown: Redis unavailable")
    failed = sorted(name for name, value in checks.items() if value != "ok")
    body = {"status": "ok" if not failed else "unavailable", "checks": checks, **details}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


def liveness(request):
    return health(request, live=True)
