"""RabbitMQ as the broker, end to end, on this machine's RabbitMQ (127.0.0.1:5672).

Each run makes a private vhost (deleted afterwards) with the firehose on, and starts its own
sandbox, worker, beat and gunicorn web with CELERY_BROKER_URL pointing at it; REDIS_URL stays
the test Redis (wake-up flags, rate limits, locks, heartbeats). Price and stock changes made
over HTTP reach the stores, a sale on a store comes back as its webhook and is counted once,
and the firehose shows the tasks published by those processes into the vhost and delivered
from its queues. Then the broker drops every connection of the vhost (RabbitMQ itself stays
up): the same worker reconnects, and a countdown flush it held unacknowledged is redelivered.
Skipped when nothing answers on 5672 or rabbitmqctl is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
import requests

from syncsvc.processes import QUEUES, ROOT, ProcessStack, database_url_for
from tests.conftest import TEST_CLOCKS, Stack
from tests.factories import product_with_variants, sandbox_channel
from tests.support.redis_state import syncsvc_state_forget
from tests.support.sandbox import SandboxControl, wait_until
from tests.support.stock import wait_stock_shown

BROKER = ("127.0.0.1", 5672)
FIREHOSE = "test-firehose"  # our queue on the vhost's amq.rabbitmq.trace exchange
SKU = "RMQ-1"
PATIENCE_S = 90  # two busy cores, shared with other test runs


def _why_no_rabbitmq() -> str | None:
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed (the test makes its private vhost with it)"
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        return f"no RabbitMQ answers on {BROKER[0]}:{BROKER[1]} ({exc})"
    return None


WHY_NOT = _why_no_rabbitmq()
pytestmark = [pytest.mark.stack, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


@dataclass(frozen=True)
class Traced:
    """A task message as the vhost's firehose saw it: published (to `queue`) or delivered
    (from `queue`) to a consumer."""

    event: str  # "publish" or "deliver"
    queue: str
    task: str
    task_id: str
    origin_pid: int | None  # the publishing process: Celery's `origin` header is gen<pid>@<host>
    redelivered: bool


class Vhost:
    """A private RabbitMQ vhost for guest, traced by the firehose; every call is scoped to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"amqp://guest:guest@{BROKER[0]}:{BROKER[1]}/{name}"
        self._traced: list[Traced] = []

    def create(self) -> None:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        rabbitmqctl("trace_on", "-p", self.name)
        with self._connection() as connection:
            channel = connection.channel()
            channel.queue_declare(FIREHOSE, durable=False, auto_delete=False)
            channel.queue_bind(FIREHOSE, "amq.rabbitmq.trace", "#")

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)

    def queues(self) -> dict[str, dict]:
        rows = json.loads(rabbitmqctl("list_queues", "-p", self.name, "--formatter", "json",
                                      "name", "messages", "messages_unacknowledged", "consumers"))
        return {row["name"]: row for row in rows}

    def consumed_queues(self) -> set[str]:
        return {name for name, row in self.queues().items() if row["consumers"] > 0}

    def connections(self) -> dict[int, dict]:
        """This vhost's client connections by their client port."""
        rows = json.loads(rabbitmqctl("list_connections", "--formatter", "json", "vhost", "peer_port", "timeout"))
        return {row["peer_port"]: row for row in rows if row["vhost"] == self.name}

    def channels(self) -> list[dict]:
        return json.loads(rabbitmqctl("list_channels", "-p", self.name, "--formatter", "json",
                                      "name", "consumer_count", "prefetch_count", "global_prefetch_count"))

    def close_connections(self) -> None:
        rabbitmqctl("close_all_connections", "-p", self.name, "syncsvc test: the broker drops its connections")

    def traced(self) -> list[Traced]:
        """Every task message traced so far (the firehose queue is drained into this list)."""
        with self._connection() as connection:
            channel = connection.channel()
            while (message := channel.basic_get(FIREHOSE, no_ack=True)) is not None:
                self._traced.append(_traced(message.delivery_info["routing_key"], message.headers))
        return list(self._traced)

    def _connection(self):
        from kombu import Connection

        return Connection(self.url, connect_timeout=10)


def _traced(routing_key: str, headers: dict) -> Traced:
    event, _, name = routing_key.partition(".")  # publish.<exchange> or deliver.<queue>
    task_headers = headers.get("properties", {}).get("headers", {})
    origin = str(task_headers.get("origin", ""))
    pid = origin.removeprefix("gen").partition("@")[0]
    queue = (headers.get("routed_queues") or [""])[0] if event == "publish" else name
    return Traced(event=event, queue=queue, task=str(task_headers.get("task", "")), task_id=str(task_headers.get("id", "")),
                  origin_pid=int(pid) if pid.isdigit() else None, redelivered=bool(headers.get("redelivered")))


@dataclass
class RabbitStack:
    stack: Stack  # what tests/factories.py's sandbox_channel takes
    web_url: str
    vhost: Vhost

    @property
    def processes(self) -> ProcessStack:
        return self.stack.processes

    def pids(self, name: str) -> set[int]:
        """A child of the stack and its own children (gunicorn's and the pool's workers)."""
        import psutil

        pid = self.processes.children[name].pid
        return {pid} | {child.pid for child in psutil.Process(pid).children(recursive=True)}

    def broker_ports(self, name: str) -> set[int]:
        """The client ports of `name`'s (and its children's) connections to the broker."""
        import psutil

        ports = set()
        for pid in self.pids(name):
            for connection in psutil.Process(pid).net_connections(kind="tcp"):
                if connection.raddr and (connection.raddr.ip, connection.raddr.port) == BROKER:
                    ports.add(connection.laddr.port)
        return ports


@pytest.fixture(scope="module")
def rabbit_stack(django_db_setup, tmp_path_factory) -> Iterator[RabbitStack]:
    from django.db import connection

    vhost = Vhost(f"syncsvc-test-{uuid.uuid4().hex[:10]}")
    try:
        vhost.create()
    except RuntimeError as exc:  # e.g. not root and no Erlang cookie: the broker is not ours to configure
        pytest.skip(f"rabbitmqctl cannot make a vhost on this machine's RabbitMQ: {exc}")
    # Its own beat leadership: conftest's stack (a deployment on another broker) leads its own.
    env = {**os.environ, **TEST_CLOCKS, "DATABASE_URL": database_url_for(connection.settings_dict),
           "CELERY_BROKER_URL": vhost.url, "SYNCSVC_BEAT_LEADER_KEY": f"syncsvc:beat:leader:{vhost.name}"}
    processes = ProcessStack(env=env, log_dir=tmp_path_factory.mktemp("rabbitmq-stack"))
    try:
        sandbox_url = processes.start_sandbox()
        processes.start_worker()
        processes.start_beat()
        web_url = processes.start_web(workers=1, threads=8)
        yield RabbitStack(Stack(processes, sandbox_url, SandboxControl(sandbox_url)), web_url, vhost)
    finally:
        processes.stop()
        vhost.delete()


@pytest.fixture
def rabbit(rabbit_stack, transactional_db) -> Iterator[RabbitStack]:
    """The RabbitMQ stack with committed data visible to it, alone on the test database (as
    conftest's `live` is to its stack)."""
    from channels.models import Channel

    # our beat keeps leading (and sending) between tests
    syncsvc_state_forget(keep=rabbit_stack.processes.env["SYNCSVC_BEAT_LEADER_KEY"].encode())
    with _other_celery_paused(rabbit_stack.processes):
        yield rabbit_stack
        Channel.objects.update(enabled=False)  # quiet our worker before the database is emptied


@contextmanager
def _other_celery_paused(mine: ProcessStack) -> Iterator[None]:
    """Stop (SIGSTOP) any other worker and beat this pytest run started (conftest's Redis-broker
    `stack`, when earlier tests started it) until the test ends: they share the test database
    and Redis, so their sweeps would flush our channels over Redis and blur what went through
    RabbitMQ. Resumed before the database is emptied, so none of them holds a lock then."""
    import psutil

    ours = {child.pid for child in mine.children.values()}
    others = [process.pid for process in psutil.Process().children()
              if process.pid not in ours and _is_celery_worker_or_beat(process)]
    for pid in others:
        os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.killpg(pid, signal.SIGCONT)


def _is_celery_worker_or_beat(process) -> bool:
    import psutil

    try:
        argv = process.cmdline()
    except psutil.Error:
        return False
    return "celery" in argv and ("worker" in argv or "beat" in argv)


def _pim() -> requests.Session:
    """A requests session carrying a PIM user's token, as the PIM calls the API."""
    from syncsvc.permissions import api_token

    session = requests.Session()
    session.headers["Authorization"] = f"Token {api_token(f'rabbit-pim-{uuid.uuid4().hex[:6]}', 'pim')}"
    return session


def _summary(traced: list[Traced]) -> list[tuple]:
    """What an assertion shows of the trace: each kind of message once, with a count."""
    counts = Counter((t.event, t.task, t.queue, t.origin_pid or 0) for t in traced)
    return sorted((*key, n) for key, n in counts.items())


def _redis_queue_lengths() -> dict[str, int]:
    """What Celery's Redis transport would hold for our queues (a list per queue)."""
    from channels.redis_client import get_redis

    redis = get_redis()
    return {queue: redis.llen(queue) for queue in QUEUES.split(",")}


def _shows(sandbox: SandboxControl, kind: str, store: str, *, price: str, available: int) -> bool:
    item = sandbox.item(kind, store, SKU) or {}
    return item.get("price") is not None and Decimal(str(item["price"])) == Decimal(price) and item.get("available") == available


def _stores_in_sync(rabbit: RabbitStack, store_name: str, kinds: tuple[str, ...]) -> dict[str, str]:
    """A variant in the PIM, then a store per kind holding it as the PIM does. The variant
    comes first: with no channel to wake, the test process itself queues nothing."""
    product_with_variants(handle=store_name, skus=[SKU], price="10.00", stock=20)
    stores = {kind: f"{store_name}-{kind}" for kind in kinds}
    for kind, store in stores.items():
        sandbox_channel(rabbit.stack, kind, store, receiver_url=rabbit.web_url)
        rabbit.stack.sandbox.put_item(kind, store, SKU, price="10.00", available=20, title=SKU)
    return stores


def test_changes_over_http_and_a_sale_go_through_rabbitmq_to_the_stores_and_the_ledger(rabbit, store_name):
    from inventory.models import StockMovement
    from inventory.selectors import stock_totals

    # given: two stores in sync, and what the Redis broker's queues hold now
    stores = _stores_in_sync(rabbit, store_name, ("shopify", "woocommerce"))
    sandbox = rabbit.stack.sandbox
    pim = _pim()
    redis_before = _redis_queue_lengths()

    # when: the PIM changes the price and receives 5 units over HTTP, then Shopify sells 2
    answer = pim.patch(f"{rabbit.web_url}/api/v1/variants/{SKU}/", json={"price": "12.34"}, timeout=30)
    assert answer.status_code == 200, answer.text
    answer = pim.post(f"{rabbit.web_url}/api/v1/inventory/adjustments/",
                      json={"sku": SKU, "delta": 5, "reason": "receipt", "reference": f"rmq-{store_name}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    wait_until(lambda: all(_shows(sandbox, kind, store, price="12.34", available=25) for kind, store in stores.items()),
               timeout=PATIENCE_S, message="the price and the receipt never reached both stores")
    sandbox.sales("shopify", stores["shopify"], sku=SKU, quantity=2)

    # then: the ledger holds the sale once, and both stores show what is left
    wait_until(lambda: stock_totals(sku=SKU) == (23, 0), timeout=PATIENCE_S, message="the sale never reached the ledger")
    wait_stock_shown(sandbox, SKU, {(kind, store): 23 for kind, store in stores.items()}, timeout=PATIENCE_S)
    assert StockMovement.objects.filter(variant__sku=SKU, reason="sale").count() == 1

    # and: the web published the flushes and the webhook's processing into the vhost, beat its
    # schedule, and the worker took them from the vhost's queues, each of which it consumes
    web, beat = rabbit.pids("web"), rabbit.pids("beat")

    def sweeps_from_beat_delivered(traced: list[Traced]) -> set[str]:
        sent = {t.task_id for t in traced if t.event == "publish" and t.task == "channels.sweep"
                and t.queue == "maintenance" and t.origin_pid in beat}
        return sent & {t.task_id for t in traced if t.event == "deliver"}

    # (the whole test may take less than beat needs to start sending on a busy machine)
    wait_until(lambda: sweeps_from_beat_delivered(rabbit.vhost.traced()), timeout=PATIENCE_S, interval=0.5,
               message=lambda: f"no sweep of beat's went through the vhost: {_summary(rabbit.vhost.traced())}")
    traced = rabbit.vhost.traced()
    delivered = {t.task_id for t in traced if t.event == "deliver"}
    published = [t for t in traced if t.event == "publish"]
    flushes = {t.task_id for t in published if t.task == "channels.flush" and t.queue == "sync" and t.origin_pid in web}
    drains = {t.task_id for t in published
              if t.task == "channels.inbound_process" and t.queue == "inbound" and t.origin_pid in web}
    assert flushes and flushes <= delivered, _summary(traced)
    assert drains and drains <= delivered, _summary(traced)
    assert rabbit.vhost.consumed_queues() >= set(QUEUES.split(","))
    # and: each process talks to the broker in this vhost, and nothing was queued in Redis
    connected = set(rabbit.vhost.connections())
    for name in ("web", "worker", "beat"):
        assert rabbit.broker_ports(name) & connected, f"{name} has no connection in the vhost"
    redis_after = _redis_queue_lengths()
    assert all(redis_after[queue] <= redis_before[queue] for queue in redis_before), (redis_before, redis_after)


def test_the_worker_takes_one_message_per_pool_process_and_heartbeats_its_connection(rabbit):
    # given: the worker (two pool processes, prefetch multiplier 1) consuming every queue
    wait_until(lambda: rabbit.vhost.consumed_queues() >= set(QUEUES.split(",")), timeout=PATIENCE_S,
               message="the worker never consumed every queue")
    worker_ports = rabbit.broker_ports("worker")

    def consuming() -> list[dict]:
        return [row for row in rabbit.vhost.channels()
                if row["consumer_count"] > 0 and _client_port(row["name"]) in worker_ports]

    # when: we look at its consuming channel and that channel's connection as RabbitMQ sees
    # them (a countdown task a test left held raises the prefetch by one until it runs: wait
    # for none)
    channels = wait_until(lambda: [row for row in consuming() if _prefetch(row) == 2], timeout=PATIENCE_S,
                          interval=0.5, message=lambda: f"the consuming channel: {consuming()}")
    connection = rabbit.vhost.connections()[_client_port(channels[0]["name"])]

    # then: the one channel that consumes every queue holds two unacknowledged messages in
    # all, not two per queue; and its connection has a heartbeat (a dead broker is noticed;
    # the pool processes' publishing connections have none, as Celery's producers never do)
    assert len(channels) == 1 and channels[0]["consumer_count"] == len(QUEUES.split(",")), channels
    assert channels[0]["global_prefetch_count"] == 2, channels
    assert connection["timeout"] > 0, connection


def _client_port(channel_name: str) -> int:
    """`127.0.0.1:41234 -> 127.0.0.1:5672 (1)` -> 41234."""
    return int(channel_name.split(" ")[0].rpartition(":")[2])


def _prefetch(channel: dict) -> int:
    return max(channel["prefetch_count"], channel["global_prefetch_count"])


def test_the_brokers_consumer_timeout_outlasts_the_longest_message_a_worker_holds():
    # given: the longest a worker holds a message unacknowledged, with a deployment's settings:
    # a flush's countdown (beyond the horizon the sweep wakes it instead), then a run bounded
    # by its lease (a flush's, a catalog refresh step's)
    hold = _deployment_settings("LEASE_S", "CATALOG_REFRESH_LEASE_S")
    longest_hold_s = hold["REQUEUE_HORIZON_S"] + max(hold["LEASE_S"], hold["CATALOG_REFRESH_LEASE_S"])

    # when
    answer = rabbitmqctl("eval", "application:get_env(rabbit, consumer_timeout).").strip()

    # then: RabbitMQ would not cancel the consumer first (`undefined`: it never does)
    if answer != "undefined":
        timeout_ms = int(answer.removeprefix("{ok,").removesuffix("}"))
        assert timeout_ms / 1000 > longest_hold_s, f"consumer_timeout {timeout_ms} ms <= {longest_hold_s} s"


def _deployment_settings(*names: str) -> dict[str, float]:
    """SYNCSVC settings as a deployment has them by default (this process runs with
    TEST_CLOCKS), plus the flush's requeue horizon."""
    script = ("import json, django; django.setup(); from django.conf import settings; "
              "from channels.services.flush import REQUEUE_HORIZON_S; "
              f"print(json.dumps({{'REQUEUE_HORIZON_S': REQUEUE_HORIZON_S, **{{n: settings.SYNCSVC[n] for n in {list(names)!r}}}}}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")} | {"DJANGO_SETTINGS_MODULE": "syncsvc.settings"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                            check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_same_worker_reconnects_when_the_broker_drops_every_connection_and_changes_still_flow(rabbit, store_name):
    # given: a store in sync and the worker consuming every queue
    stores = _stores_in_sync(rabbit, store_name, ("shopify",))
    worker = rabbit.processes.children["worker"]
    pid = worker.pid
    wait_until(lambda: rabbit.vhost.consumed_queues() >= set(QUEUES.split(",")), timeout=PATIENCE_S,
               message="the worker never consumed every queue")
    before = rabbit.broker_ports("worker")

    # when: RabbitMQ closes every connection of the vhost (worker, beat, web)
    rabbit.vhost.close_connections()

    # then: the same worker process consumes every queue again, over a new connection
    def reconnected() -> bool:
        ports = rabbit.broker_ports("worker") - before
        return bool(ports & set(rabbit.vhost.connections())) and rabbit.vhost.consumed_queues() >= set(QUEUES.split(","))

    wait_until(reconnected, timeout=PATIENCE_S, interval=0.5, message=lambda: worker.log_tail())
    assert worker.alive() and worker.pid == pid
    # and: a price change made over HTTP now goes through the vhost and reaches the store
    seen = len(rabbit.vhost.traced())
    answer = _pim().patch(f"{rabbit.web_url}/api/v1/variants/{SKU}/", json={"price": "11.11"}, timeout=30)
    assert answer.status_code == 200, answer.text
    wait_until(lambda: _shows(rabbit.stack.sandbox, "shopify", stores["shopify"], price="11.11", available=20),
               timeout=PATIENCE_S, message="the price never reached the store after the reconnection")
    after = rabbit.vhost.traced()[seen:]
    web = rabbit.pids("web")
    flushes = {t.task_id for t in after if t.event == "publish" and t.task == "channels.flush" and t.origin_pid in web}
    assert flushes and flushes <= {t.task_id for t in after if t.event == "deliver"}, _summary(after)


def test_a_countdown_flush_the_worker_holds_is_redelivered_when_its_connection_drops(rabbit):
    from kombu import Connection

    from channels.tasks import flush

    # given: a flush due in 8 s, which the worker takes at once and holds unacknowledged
    # (acks_late; RabbitMQ has no visibility timeout: the message is the worker's until it
    # acknowledges it or its connection goes)
    with Connection(rabbit.vhost.url, connect_timeout=10) as connection:
        task_id = flush.apply_async(args=(2**31 - 1,), countdown=8, connection=connection).id
    wait_until(lambda: rabbit.vhost.queues().get("sync", {}).get("messages_unacknowledged") == 1, timeout=PATIENCE_S,
               interval=0.5, message="the worker never took the countdown flush")

    # when: the broker drops the worker's connection before the flush is due
    rabbit.vhost.close_connections()

    # then: RabbitMQ hands the message again to the reconnected worker, which acknowledges it
    # once it has run
    wait_until(lambda: any(t.task_id == task_id and t.event == "deliver" and t.redelivered for t in rabbit.vhost.traced()),
               timeout=PATIENCE_S, interval=0.5, message="the held flush was never redelivered")
    wait_until(lambda: rabbit.vhost.queues()["sync"]["messages"] == 0, timeout=PATIENCE_S, interval=0.5,
               message="the redelivered flush was never acknowledged")
