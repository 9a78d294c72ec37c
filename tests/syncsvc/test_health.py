"""/health/: readiness from the database, Redis and the heartbeats of the real worker and beat;
liveness without any of them."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from django.conf import settings
from django.test import Client

from syncsvc import heartbeats, redis_clients
from syncsvc.heartbeats import redis_client
from syncsvc.processes import QUEUES
from tests.factories import ChannelFactory
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack


def _health(client: Client, path: str = "/health/"):
    response = client.get(path)
    return response.status_code, response.json()


@pytest.fixture
def dead_heartbeats(monkeypatch):
    """Point /health/ at heartbeat keys nobody writes (the real worker and beat keep running)."""
    prefix = f"syncsvc:test-dead-heartbeat:{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(settings.SYNCSVC, "HEARTBEAT_PREFIX", prefix)
    yield prefix
    redis = redis_client()
    for key in redis.scan_iter(f"{prefix}:*"):
        redis.delete(key)


def test_ready_when_the_database_redis_a_worker_and_beat_answer(live):
    # given: the stack's real worker and beat (their heartbeats were cleared with Redis)
    client = Client()

    # when
    def ready():
        status, body = _health(client)
        return body if status == 200 else None

    body = wait_until(ready, timeout=15, message=lambda: f"never ready: {_health(client)}")

    # then
    assert body["checks"] == {"database": "ok", "redis": "ok", "workers": "ok", "beat": "ok"}
    assert any(name.startswith("worker-") for name in body["workers"]), body
    assert body["beat_age_s"] < heartbeats.stale_after_s()


def test_no_heartbeats_is_503_naming_workers_and_beat(live, dead_heartbeats):
    # when
    status, body = _health(Client())

    # then
    assert status == 503
    assert body["failed"] == ["beat", "workers"]
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert "no worker heartbeat" in body["checks"]["workers"]
    assert "no beat heartbeat" in body["checks"]["beat"]


def test_a_stale_beat_and_a_worker_missing_queues_are_named(live, dead_heartbeats):
    # given: a worker alive but consuming only `sync`, and a beat heartbeat far too old
    redis = redis_client()
    heartbeats.worker_heartbeat_write(redis, hostname="only-sync@host", queues=["sync"])
    redis.set(f"{dead_heartbeats}:beat", repr(time.time() - 10 * heartbeats.stale_after_s()))

    # when
    status, body = _health(Client())

    # then
    assert status == 503 and body["failed"] == ["beat", "workers"]
    assert body["workers"] == ["only-sync@host"]
    assert body["checks"]["workers"] == "error: no live worker consumes bulk, inbound, maintenance"
    assert "last beat heartbeat" in body["checks"]["beat"]


def test_a_channels_dedicated_queue_without_a_worker_is_named(live, dead_heartbeats):
    # given: workers on every shared queue, a fresh beat, and a channel routed to `sync.big`
    redis = redis_client()
    heartbeats.worker_heartbeat_write(redis, hostname="shared@host", queues=QUEUES.split(","))
    redis.set(f"{dead_heartbeats}:beat", repr(time.time()))
    ChannelFactory(name="big", settings={"sync_queue": "sync.big"})

    # when
    status, body = _health(Client())

    # then: its updates would stay owed, so the service is not ready, and says which queue
    assert status == 503 and body["failed"] == ["workers"]
    assert body["checks"]["workers"] == "error: no live worker consumes sync.big"

    # and a worker on that queue makes it ready
    heartbeats.worker_heartbeat_write(redis, hostname="big@host", queues=["sync.big"])
    assert _health(Client())[0] == 200


def test_a_worker_heartbeat_older_than_the_stale_limit_is_not_alive(live, dead_heartbeats):
    # given: a heartbeat written long ago (its key still there)
    redis = redis_client()
    heartbeats.worker_heartbeat_write(redis, hostname="old@host", queues=["sync", "inbound", "maintenance"])
    redis.zadd(f"{dead_heartbeats}:workers", {"old@host": time.time() - 10 * heartbeats.stale_after_s()})

    # when
    status, body = _health(Client())

    # then
    assert status == 503 and "workers" in body["failed"] and body["workers"] == []


def test_a_stopped_worker_removes_its_heartbeat(live):
    # given: a second worker of our own, under its own name
    processes = live.processes
    worker = processes.start_worker(name="hbworker", concurrency=1)
    hostname = f"hbworker-{os.getpid()}@"
    redis = redis_client()
    prefix = settings.SYNCSVC["HEARTBEAT_PREFIX"]

    def own_heartbeat():
        return [h.decode() for h in redis.zrange(f"{prefix}:workers", 0, -1) if h.decode().startswith(hostname)]

    names = wait_until(own_heartbeat, message="the new worker never wrote a heartbeat")
    assert json.loads(redis.get(f"{prefix}:worker:{names[0]}"))["queues"] == sorted(QUEUES.split(","))

    # when: its warm shutdown
    worker.stop(timeout=30)
    del processes.children["hbworker"]

    # then
    wait_until(lambda: not own_heartbeat(), message="the stopped worker's heartbeat is still there")
    assert redis.get(f"{prefix}:worker:{names[0]}") is None
    assert redis.hget(f"{prefix}:workers:queues", names[0]) is None


def test_liveness_asks_nothing_of_the_database_or_redis(db, django_assert_num_queries, monkeypatch):
    # given: Redis unreachable for this process
    monkeypatch.setattr(settings, "REDIS_URL", "redis://127.0.0.1:1/0")
    redis_clients._clients.clear()
    client = Client()
    try:
        # when / then
        with django_assert_num_queries(0):
            assert _health(client, "/health/live/") == (200, {"status": "ok", "checks": {"process": "ok"}})
            assert _health(client, "/health/?live=1")[0] == 200
        status, body = _health(client)
        assert status == 503 and body["checks"]["redis"].startswith("error: ")
        assert body["failed"] == ["beat", "redis", "workers"]
    finally:
        redis_clients._clients.clear()
