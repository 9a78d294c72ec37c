"""Timing probes for the sync worker, loaded with `--include benchmarks.probes`.

Celery's own task signals, no change to the engine: for every `channels.flush` the worker runs,
one JSON record goes to the Redis list named by $BENCH_PROBE_KEY with the time the wake-up
was sent (`enqueued_at`, the flush's own argument), the time the task started in a pool
process, how long it ran, and whether it was a delayed (countdown) wake-up. The benchmark
reads it to split "flush enqueued -> batch started" into the broker/free-slot wait and the rest.
Cost: one Redis RPUSH per flush.
"""
from __future__ import annotations

import json
import os
import time

from celery.signals import task_postrun, task_prerun

FLUSH = "channels.flush"
_started: dict[str, tuple[float, float]] = {}


def _key() -> str:
    return os.environ.get("BENCH_PROBE_KEY", "")


@task_prerun.connect
def _prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **_):
    if getattr(task, "name", "") == FLUSH and _key():
        _started[task_id] = (time.time(), time.perf_counter())


@task_postrun.connect
def _postrun(sender=None, task_id=None, task=None, args=None, kwargs=None, **_):
    began = _started.pop(task_id, None)
    key = _key()
    if began is None or not key:
        return
    from channels.redis_client import get_redis

    record = {
        "channel": (args or [None])[0],
        "enqueued": (kwargs or {}).get("enqueued_at"),
        "started": began[0],
        "run_ms": (time.perf_counter() - began[1]) * 1000,
        "delayed": bool(getattr(task.request, "eta", None)),
    }
    try:
        get_redis().rpush(key, json.dumps(record))
    except Exception:  # noqa: BLE001 (a probe must never fail a task)
        pass
