"""Container health checks, light enough to run every few seconds: no Django, no Celery app.

    python /app/healthcheck.py web    /health/live/ answers 200 (liveness only)
    python /app/healthcheck.py beat   beat's heartbeat in Redis is fresh (beat schedules, and
                                      a worker takes its maintenance tasks)

Workers are checked with `celery inspect ping` in docker/compose.yml: that one crosses the
broker, whichever it is. Exit 0 healthy, 1 not (the reason on stderr).
"""
from __future__ import annotations

import os
import sys
import time
import urllib.request


def _host() -> str:
    """A Host header Django accepts: the first ALLOWED_HOSTS entry ('.example.com' allows
    example.com itself; '*' anything)."""
    first = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip()
    return "localhost" if first in ("", "*") else first.lstrip(".")


def web() -> str | None:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/health/live/", headers={"Host": _host()})
    with urllib.request.urlopen(request, timeout=4) as response:
        return None if response.status == 200 else f"/health/live/ answered {response.status}"


def beat() -> str | None:
    import redis

    prefix = os.environ.get("SYNCSVC_HEARTBEAT_PREFIX", "syncsvc:heartbeat")
    interval = float(os.environ.get("SYNCSVC_HEARTBEAT_INTERVAL_S", "10"))
    stale = interval * float(os.environ.get("SYNCSVC_HEARTBEAT_STALE_INTERVALS", "3"))
    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
    value = client.get(f"{prefix}:beat")
    if value is None:
        return "no beat heartbeat yet"
    age = time.time() - float(value)
    return None if age <= stale else f"beat heartbeat {age:.0f} s old (stale after {stale:.0f} s)"


CHECKS = {"web": web, "beat": beat}

if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else "web"
    try:
        problem = CHECKS[role]()
    except Exception as exc:  # noqa: BLE001 -- any failure to ask is unhealthy, said plainly
        problem = f"{exc.__class__.__name__}: {exc}"
    if problem:
        print(f"{role}: {problem}", file=sys.stderr)
        sys.exit(1)
