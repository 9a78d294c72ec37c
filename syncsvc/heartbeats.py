"""Heartbeats in Redis, read by /health/: cheaper and steadier in a request than a broadcast
`ping` to every worker.

- Every Celery worker writes `<prefix>:worker:<hostname>` (its queues, with a TTL), its time
  in the `<prefix>:workers` sorted set and its queues in the `<prefix>:workers:queues` hash,
  every HEARTBEAT_INTERVAL_S, from a timer in its main process (`WorkerHeartbeat`, a worker
  bootstep); a warm shutdown removes them. /health/ reads the set and the hash (and beat's
  key) in one round trip.
- Beat schedules the `syncsvc.heartbeat` task, which writes `<prefix>:beat`: its age says
  that beat is scheduling and that a worker takes maintenance tasks.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import redis
from django.conf import settings
from django.db import DatabaseError

from .redis_clients import redis_for

log = logging.getLogger(__name__)


def _config() -> tuple[str, float, float]:
    config = settings.SYNCSVC
    return config["HEARTBEAT_PREFIX"], config["HEARTBEAT_INTERVAL_S"], config["HEARTBEAT_STALE_INTERVALS"]


def stale_after_s() -> float:
    _, interval, stale_intervals = _config()
    return interval * stale_intervals


def worker_heartbeat_write(redis, *, hostname: str, queues: list[str]) -> None:
    prefix, _, _ = _config()
    now = time.time()
    ttl = max(1, int(stale_after_s() + 1))
    pipe = redis.pipeline(transaction=False)
    pipe.set(f"{prefix}:worker:{hostname}", json.dumps({"at": now, "queues": queues}), ex=ttl)
    pipe.zadd(f"{prefix}:workers", {hostname: now})
    pipe.hset(f"{prefix}:workers:queues", hostname, json.dumps(queues))
    pipe.zrangebyscore(f"{prefix}:workers", "-inf", now - 86_400)
    gone = pipe.execute()[-1]
    if gone:  # workers silent for a day (renamed, scaled down) leave the set and the hash
        pipe.zrem(f"{prefix}:workers", *gone)
        pipe.hdel(f"{prefix}:workers:queues", *gone)
        pipe.execute()


def worker_heartbeat_remove(redis, *, hostname: str) -> None:
    prefix, _, _ = _config()
    pipe = redis.pipeline(transaction=False)
    pipe.delete(f"{prefix}:worker:{hostname}")
    pipe.zrem(f"{prefix}:workers", hostname)
    pipe.hdel(f"{prefix}:workers:queues", hostname)
    pipe.execute()


def beat_heartbeat_write(redis) -> None:
    prefix, _, _ = _config()
    redis.set(f"{prefix}:beat", repr(time.time()), ex=86_400)


@dataclass(frozen=True)
class Heartbeats:
    workers: dict[str, list[str]]  # hostname -> queues, the live ones only
    beat_age_s: float | None  # None: never seen


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def heartbeats_read(redis) -> Heartbeats:
    """The live workers and the age of beat's heartbeat, in one round trip."""
    prefix, _, _ = _config()
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    pipe.zrangebyscore(f"{prefix}:workers", now - stale_after_s(), "+inf")
    pipe.hgetall(f"{prefix}:workers:queues")
    pipe.get(f"{prefix}:beat")
    hostnames, queues, beat = pipe.execute()
    queues = {_text(hostname): json.loads(raw) for hostname, raw in queues.items()}
    workers = {_text(hostname): list(queues.get(_text(hostname)) or []) for hostname in hostnames}
    beat_age = now - float(beat) if beat is not None else None
    return Heartbeats(workers=workers, beat_age_s=beat_age)


_queue_sources: list[Callable[[], Iterable[str]]] = []


def add_routed_queues(source: Callable[[], Iterable[str]]) -> None:
    """Register where more routed queues come from: the apps' own routes, read when asked
    (a channel's dedicated `sync.<label>` queue, from its settings in the database)."""
    if source not in _queue_sources:
        _queue_sources.append(source)


def routed_queues() -> set[str]:
    """The queues the app sends tasks to: each needs a live worker. A source the database
    cannot answer for now adds nothing (/health/'s database check says why)."""
    queues = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    queues.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    for source in _queue_sources:
        try:
            queues.update(source())
        except DatabaseError as exc:
            log.warning("routed queues of %s unreadable: %s", getattr(source, "__qualname__", source), exc)
    return queues


def _worker_step():
    from celery import bootsteps

    class WorkerHeartbeat(bootsteps.StartStopStep):
        """Writes this worker's heartbeat from its main process's timer."""

        requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

        def __init__(self, worker, **kwargs):
            super().__init__(worker, **kwargs)
            self.entry = None
            self.redis = None

        def _beat(self, worker) -> None:
            try:
                queues = sorted(worker.app.amqp.queues.consume_from)
                worker_heartbeat_write(self.redis, hostname=worker.hostname, queues=queues)
            except redis.RedisError as exc:  # Redis away: /health/ will say so; the worker carries on
                log.warning("worker heartbeat not written: %s", exc.__class__.__name__)

        def start(self, worker) -> None:
            self.redis = redis_client()
            self._beat(worker)
            self.entry = worker.timer.call_repeatedly(settings.SYNCSVC["HEARTBEAT_INTERVAL_S"], self._beat, (worker,))

        def stop(self, worker) -> None:
            if self.entry is not None:
                self.entry.cancel()
            if self.redis is not None:
                try:
                    worker_heartbeat_remove(self.redis, hostname=worker.hostname)
                except redis.RedisError as exc:  # shutting down anyway; the key's TTL ends it
                    log.info("worker heartbeat not removed: %s", exc.__class__.__name__)

    return WorkerHeartbeat


def install(app) -> None:
    """Add the worker heartbeat step and the beat heartbeat task to the Celery app."""
    app.steps["worker"].add(_worker_step())

    @app.task(name="syncsvc.heartbeat", ignore_result=True)
    def heartbeat() -> None:
        beat_heartbeat_write(redis_client())


def redis_client():
    """Short timeouts: a health check must answer even when Redis does not."""
    return redis_for("health", timeout_s=1, connect_timeout_s=1)
