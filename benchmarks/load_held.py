#!/usr/bin/env python
"""Issue 7's load held: 100 changes/s with inbound sales mixed in for 10 minutes, and whether
the system holds it (queue depth flat, p99 stable, memory per worker stable).

    python benchmarks/load_held.py [--duration 600] [--rate 100] [--sales-rate 3] [--skus 3000]
                                   [--kinds shopify,woocommerce,magento,webhook] [--bucket 60]

Not part of `make bench` (it takes the duration plus a few minutes). Like the other benchmarks
it derives its database from $DATABASE_URL (`<name>_bench` on the same server, dropped and
created, dropped at the end) and takes Redis from $REDIS_URL (its `syncsvc:*` keys and Celery
queues are emptied first). Through `syncsvc.processes.ProcessStack` it starts the sandbox,
gunicorn (the web, 2 workers x 16 threads), two Celery workers as a deployment splits them
(`sync,bulk` at concurrency 4; `inbound,maintenance` at 2) and beat, then:

1. Seeds `--skus` SKUs (products of 100 variants, 1,000 units each), one sandbox store and
   channel per `--kinds` (the stores of real shops hold every SKU first; Shopify on the Plus
   plan unless `--shopify-plan`), and waits until every store shows the DB.
2. Baseline, before any load: `GET /health/` from 4 keep-alive clients for 5 s (rate and
   latency), and a latency probe: one price edit per second for 20 s, commit -> channel 2xx.
3. Load for `--duration` s: `--rate` changes/s through the PIM API over HTTP (70 % `PATCH
   /api/v1/variants/{sku}/` price edits, 30 % `POST /api/v1/inventory/adjustments/` stock
   adjustments, uniformly over the SKUs), open loop: change i is due at t0 + i/rate and is sent
   then whatever the earlier ones did (64 client threads share the schedule; lateness is
   recorded, and a load whose answers fall behind lasts longer than `--duration`: no change is
   dropped). Beside it, `--sales-rate` customer purchases/s on the Shopify and WooCommerce
   stores (the sandbox's `sales` control: the store sells and sends its real signed order
   webhook to the web).
4. Every 10 s: LLEN of each Celery queue in the broker and its unacked messages, pending marks
   (owed work) and unapplied inbound events in the DB, RSS (from /proc) of each worker's main
   and pool processes, of the web, CPU per component and of the whole machine (other
   processes' share: the machine is shared), and `GET /health/` latency (5 calls).
5. After the load: every channel's store must equal the DB (price, and stock as the channel is
   shown it), the ledger must hold every accepted sale exactly once, and every SKU's stock
   must be the seed plus the accepted adjustments minus the sales. Else exit 1.

Latency is `SyncAttempt.latency_ms` (commit of the oldest change a delivery carries -> the
store's 2xx, after which the store shows it), success rows, bucketed by commit time. Verdicts
compare the load's first third with its last third: queue depth flat (broker, owed marks, and
owed marks per change/s achieved, which stays flat when the rate itself moves), p99 stable
(within 2x), RSS growth per worker process (MB per 10 min, from a least-squares slope after
the first minute); and CPU ms per change per component, to say what limits the rate. Ratios against the baseline say how much of a number is load and how much is the
machine. Writes var/load-held.md and prints it; child logs in var/load-held-logs/.
"""
from __future__ import annotations

import argparse
import bisect
import http.client
import json
import logging
import math
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support import (  # noqa: E402
    VAR,
    Summary,
    bench_database,
    create_database,
    default_database_url,
    drop_database,
    machine,
    markdown_table,
    ms,
    redact,
)

DEFAULT_KINDS = "shopify,woocommerce,magento,webhook"
SALE_KINDS = ("shopify", "woocommerce")  # stores whose sales send webhooks back (Magento is polled)
CELERY_QUEUES = ("sync", "inbound", "maintenance", "bulk")
WORKERS = (("worker-sync", "sync,bulk", 4), ("worker-inbound", "inbound,maintenance", 2))
WEB_WORKERS, WEB_THREADS = 2, 16
SECRET = "load-held-secret"
SEED_UNITS = 1000
PRICE_SHARE = 0.7
VARIANTS_PER_PRODUCT = 100
# Open loop: enough clients that a slow answer delays no other change (gunicorn has 32
# threads; more clients queue at its socket, which shows as call time, not as lateness).
ISSUER_THREADS = 64
SAMPLE_EVERY_S = 10.0
P99_FACTOR = 2.0  # p99 stable: the last third's within this factor of the first third's
RSS_MB_PER_10_MIN = 10.0  # memory stable: each process grows less than this
RESULTS = VAR / "load-held.md"
LOG_DIR = VAR / "load-held-logs"
STOPPING = threading.Event()


class LoadError(RuntimeError):
    """The run could not be held or measured (did not drain, did not converge, a call failed)."""


def log(message: str) -> None:
    print(f"load: {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=100.0, help="PIM changes per second (100)")
    parser.add_argument("--sales-rate", type=float, default=3.0, help="store purchases per second (3)")
    parser.add_argument("--skus", type=int, default=3000, help="SKUs in the catalog (3,000)")
    parser.add_argument("--kinds", default=DEFAULT_KINDS, help=f"one channel per kind ({DEFAULT_KINDS})")
    # Plus: a shop taking 100 changes/s is a Plus shop; on Standard (100 points/s) the store's
    # bucket, not syncsvc, sets Shopify's latency (benchmarks/shopify_burst.py measures that).
    parser.add_argument("--shopify-plan", default="plus", help="the Shopify store's plan (plus)")
    parser.add_argument("--bucket", type=float, default=60.0, help="seconds per row of the tables (60)")
    parser.add_argument("--threads", type=int, default=ISSUER_THREADS, help="client threads issuing changes (64)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for the backlog (300)")
    args = parser.parse_args(argv)
    args.kinds = tuple(kind.strip() for kind in args.kinds.split(",") if kind.strip())
    from tests.support.kinds import KINDS

    unknown = [kind for kind in args.kinds if kind not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"--kinds takes some of {', '.join(KINDS)}; got {unknown or 'none'}")
    return args


# --- HTTP ---------------------------------------------------------------------------------------


class Client:
    """One keep-alive `http.client` connection (cheaper in CPU than `requests`, which matters
    when the client shares two cores with what it measures; as benchmarks/inbound.py does)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = headers or {}
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection failed twice."""
        raw = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, **({"Content-Type": "application/json"} if raw is not None else {})}
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more on a new one
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.connection.request(method, path, body=raw, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    return 0, b""
        return 0, b""

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def health_rate(web_url: str, *, seconds: float = 5.0, clients: int = 4) -> tuple[float, Summary]:
    """`GET /health/` (a DB and a Redis round trip through gunicorn) as fast as `clients`
    keep-alive clients get answers: answers/s and latency (ms)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def run() -> None:
        client = Client(web_url)
        while time.monotonic() < deadline:
            began = time.perf_counter()
            status, _ = client.call("GET", "/health/")
            if status == 200:
                latencies.append((time.perf_counter() - began) * 1000)
        client.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / seconds, Summary.of(latencies)


# --- the stack, the catalog and the stores ------------------------------------------------------


def start_stack(env: dict[str, str]):
    import shutil

    from syncsvc.processes import ProcessStack

    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    stack = ProcessStack(env=env, log_dir=LOG_DIR)
    sandbox_url = stack.start_sandbox()
    web_url = stack.start_web(workers=WEB_WORKERS, threads=WEB_THREADS)
    for name, queues, concurrency in WORKERS:
        stack.start_worker(name=name, queues=queues, concurrency=concurrency)
    stack.start_beat()
    log(f"sandbox {sandbox_url}, web {web_url}, workers "
        + ", ".join(f"{name} (-Q {queues} -c {concurrency})" for name, queues, concurrency in WORKERS)
        + f", beat; logs in {LOG_DIR.relative_to(ROOT)}")
    return stack, sandbox_url, web_url


def clean_redis() -> None:
    """This run's Redis database starts empty of syncsvc's keys and of queued Celery messages."""
    from channels.redis_client import get_redis

    redis = get_redis()
    keys = [*redis.scan_iter("syncsvc:*"), *broker_keys(), "unacked", "unacked_index"]
    if keys:
        redis.delete(*keys)


def broker_keys() -> list[str]:
    # kombu's Redis transport keeps priority levels 3, 6, 9 in lists beside the queue's own.
    return [name + suffix for name in CELERY_QUEUES for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169")]


def seed_catalog(count: int) -> list[tuple[int, str, str]]:
    """(variant id, SKU, product handle): products of 100 variants through the PIM's service,
    and a receipt of SEED_UNITS each written set-based as an import would (before any channel)."""
    from django.db import transaction

    from inventory import services
    from inventory.capture import suppressed
    from inventory.models import StockLevel, StockMovement, Variant

    handles = {}
    for start in range(0, count, VARIANTS_PER_PRODUCT):
        handle = f"load-{start // VARIANTS_PER_PRODUCT:04d}"
        skus = [f"LOAD-{i:05d}" for i in range(start, min(start + VARIANTS_PER_PRODUCT, count))]
        services.product_create(handle=handle, title=f"Load product {start // VARIANTS_PER_PRODUCT}", origin="seed",
                                variants=[{"sku": sku, "price": Decimal("10.00")} for sku in skus])
        handles.update(dict.fromkeys(skus, handle))
    variants = list(Variant.objects.filter(sku__in=handles).order_by("sku").values_list("pk", "sku"))
    ids = [pk for pk, _ in variants]
    with transaction.atomic(), suppressed():
        StockMovement.objects.bulk_create(
            StockMovement(variant_id=pk, location="default", delta=SEED_UNITS, reason=StockMovement.Reason.RECEIPT,
                          source="seed", reference=f"seed-{pk}", on_hand_after=SEED_UNITS, reserved_after=0)
            for pk in ids
        )
        StockLevel.objects.bulk_create(StockLevel(variant_id=pk, location="default", on_hand=SEED_UNITS) for pk in ids)
        services.changes_record(variant_ids=ids, aspect="inventory", origin="seed")
    return [(pk, sku, handles[sku]) for pk, sku in variants]


def seed_stores(sandbox_url: str, stores: dict[str, str], catalog: list[tuple[int, str, str]]) -> None:
    """Each real-shop store holds every SKU first (price 10.00, none available), as a shop does
    before its first sync; Shopify's grouped into the same products."""
    from tests.support.kinds import KINDS

    local = threading.local()

    def put(job: tuple[str, str, str, str]) -> None:
        kind, store, sku, handle = job
        client = getattr(local, "client", None) or Client(sandbox_url)
        local.client = client
        body = {"price": "10.00", "available": 0, "title": sku, **({"product": handle} if kind == "shopify" else {})}
        status, answer = client.call("PUT", f"/_sandbox/{kind}/{store}/items/{sku}", body)
        if status != 200:
            raise LoadError(f"seeding {kind}/{store} {sku}: {status} {answer[:200]!r}")

    jobs = [(kind, store, sku, handle) for kind, store in stores.items() if KINDS[kind].store_holds_skus
            for _, sku, handle in catalog]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, jobs))


def make_channels(sandbox_url: str, web_url: str, stores: dict[str, str], plan: str) -> dict[str, int]:
    """One channel per store, set up as the contract suite does; the selling stores send their
    order webhooks to this web, signed with the channel's secret. Returns kind -> channel id."""
    from channels.models import Channel
    from tests.support.kinds import KINDS

    control = Client(sandbox_url)
    ids = {}
    for kind, store in stores.items():
        setup = KINDS[kind]
        channel = Channel(name=f"load-{kind}", kind=kind, base_url=f"{sandbox_url}/{kind}/{store}",
                          settings=dict(setup.settings))
        channel.credentials = {**setup.credentials, "webhook_secret": SECRET}
        channel.save()
        config = dict(setup.store_config)
        if kind == "shopify":
            config["plan"] = plan
        if kind in SALE_KINDS:
            config.update(webhook_url=f"{web_url}/webhooks/{channel.pk}/", webhook_secret=SECRET)
        status, answer = control.call("POST", f"/_sandbox/{kind}/{store}/config", config)
        if status != 200:
            raise LoadError(f"configuring {kind}/{store}: {status} {answer[:200]!r}")
        ids[kind] = channel.pk
    control.close()
    return ids


def pim_token() -> str:
    from syncsvc.permissions import api_token

    return api_token(f"load-pim-{uuid.uuid4().hex[:6]}", "pim")


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load did: per-op records and what the stores and the API accepted."""

    ops: list[tuple[float, float, float, str, int]] = field(default_factory=list)  # due, began, ended, kind, status
    deltas: Counter = field(default_factory=Counter)  # SKU -> accepted stock adjustments
    sales: Counter = field(default_factory=Counter)  # SKU -> units the stores sold
    sale_calls: list[tuple[float, int]] = field(default_factory=list)  # (time, status)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """The PIM's changes (open loop, shared by `threads` clients) and the stores' customers."""

    def __init__(self, *, web_url: str, sandbox_url: str, token: str, skus: list[str], sale_stores: list[tuple[str, str]],
                 rate: float, sales_rate: float, duration: float, threads: int, seed: int, run_id: str) -> None:
        self.web_url = web_url
        self.sandbox_url = sandbox_url
        self.headers = {"Authorization": f"Token {token}"}
        self.skus = skus
        self.sale_stores = sale_stores
        self.rate = rate
        self.sales_rate = sales_rate
        self.count = int(rate * duration)
        self.threads = threads
        self.seed = seed
        self.run_id = run_id
        self.tally = Tally()
        self.t0 = 0.0
        self.ended_at = 0.0  # when the last change was answered
        self.sent = 0
        self.errors: list[str] = []
        self._pool: list[threading.Thread] = []
        self._done = threading.Event()

    def op(self, index: int) -> tuple[str, str, dict]:
        """Change `index` of the schedule: (kind, path, body), the same for the same seed. Each
        price is new (it carries the index), so every edit is a real change."""
        rng = random.Random(self.seed * 1_000_003 + index)
        sku = self.skus[rng.randrange(len(self.skus))]
        if rng.random() < PRICE_SHARE:
            return "price", f"/api/v1/variants/{sku}/", {"price": f"{(2000 + index) / 100:.2f}"}
        delta = rng.choice((1, 2, 3, -1, -2))
        body = {"sku": sku, "delta": delta, "reason": "receipt" if delta > 0 else "correction",
                "reference": f"load-{self.run_id}-{index}", "source": "load"}
        return "stock", "/api/v1/inventory/adjustments/", body

    def start(self) -> None:
        self.t0 = time.time() + 0.5
        for k in range(self.threads):
            thread = threading.Thread(target=self._issue, args=(k,), name=f"issuer-{k}", daemon=True)
            thread.start()
            self._pool.append(thread)
        if self.sale_stores and self.sales_rate > 0:
            thread = threading.Thread(target=self._sell, name="sales", daemon=True)
            thread.start()
            self._pool.append(thread)

    def join(self) -> None:
        for thread in self._pool[: self.threads]:
            thread.join()
        self.ended_at = max((op[2] for op in self.tally.ops), default=time.time())
        self._done.set()
        for thread in self._pool[self.threads:]:
            thread.join()

    def _issue(self, k: int) -> None:
        client = Client(self.web_url, self.headers)
        records = []
        try:
            for index in range(k, self.count, self.threads):
                due = self.t0 + index / self.rate
                if STOPPING.wait(max(0.0, due - time.time())):
                    return
                kind, path, body = self.op(index)
                began = time.time()
                status, answer = client.call("PATCH" if kind == "price" else "POST", path, body)
                records.append((due, began, time.time(), kind, status))
                self.sent += 1  # a racy count is fine: it only feeds the progress line
                # 200: the same reference again (a retry whose first answer was lost), applied once.
                if kind == "stock" and status in (200, 201):
                    with self.tally.lock:
                        self.tally.deltas[body["sku"]] += body["delta"]
                elif status not in (200, 201) and len(self.errors) < 20:
                    self.errors.append(f"{kind} {path} -> {status} {answer[:200]!r}")
        finally:
            client.close()
            with self.tally.lock:
                self.tally.ops += records

    def _sell(self) -> None:
        """Purchases open loop at `sales_rate`, round robin over the selling stores, one unit of
        a random SKU each, for as long as the changes go on; a 2xx is a sale the store made (and
        whose webhook it sends)."""
        client = Client(self.sandbox_url)
        rng = random.Random(self.seed + 1)
        index = 0
        while not self._done.is_set():
            due = self.t0 + index / self.sales_rate
            if STOPPING.wait(max(0.0, due - time.time())) or self._done.is_set():
                break
            kind, store = self.sale_stores[index % len(self.sale_stores)]
            sku = self.skus[rng.randrange(len(self.skus))]
            status, _ = client.call("POST", f"/_sandbox/{kind}/{store}/sales", {"sku": sku, "quantity": 1})
            with self.tally.lock:
                self.tally.sale_calls.append((time.time(), status))
                if 200 <= status < 300:
                    self.tally.sales[sku] += 1
            index += 1
        client.close()


# --- sampling -----------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size from /proc/<pid>/status (VmRSS), MB; NaN once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


def process_tree(pid: int) -> list[int]:
    """The process and its children (a worker's pool, gunicorn's workers)."""
    import psutil

    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children())]
    except psutil.Error:
        return [pid]


class Meter:
    """CPU seconds so far per component (benchmarks/run.py's `CpuMeter`), with PostgreSQL split:
    the backends serving this run's database (followed pid by pid, so a backend that closes
    loses only its last interval), and the whole server (other databases' work included).
    Names in parentheses are not this run's: the machine, shared servers."""

    def __init__(self, stack, database: str) -> None:
        from benchmarks.run import CpuMeter

        self.cpu_meter = CpuMeter(stack)
        self.database = database
        self.backends: dict[int, float] = {}
        self.backend_total = 0.0
        self.snapshot()
        self.backend_total = 0.0  # from now on

    def snapshot(self) -> dict[str, float]:
        import psutil

        totals = self.cpu_meter.snapshot()
        totals["(postgres, whole server)"] = totals.pop("postgres", 0.0)
        totals["(redis, whole server)"] = totals.pop("redis", 0.0)
        for process in psutil.process_iter(["name", "cmdline"]):
            words = " ".join(process.info["cmdline"] or []).split()
            if not (process.info["name"] or "").startswith("postgres") or self.database not in words:
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            used = times.user + times.system
            self.backend_total += used - self.backends.get(process.pid, 0.0)
            self.backends[process.pid] = used
        totals["postgres (this database)"] = self.backend_total
        return totals


def ours(cpu: dict[str, float]) -> float:
    return sum(value for name, value in cpu.items() if not name.startswith("("))


@dataclass
class Sample:
    at: float  # seconds since the load started
    queues: dict[str, int]
    unacked: int
    marks_pending: int
    marks_due: int
    inbound_backlog: int
    rss: dict[str, float]  # "worker-sync main", "worker-sync #1", ..., "web ..." -> MB
    cpu: dict[str, float]  # component -> % of one CPU over the interval
    health_ms: float
    issued: int
    sales: int

    @property
    def broker_depth(self) -> int:
        return sum(self.queues.values())


class Sampler:
    """Every SAMPLE_EVERY_S: the broker, the owed work, memory, CPU and the web's health."""

    def __init__(self, *, stack, web_url: str, load: Load, database: str) -> None:
        self.stack = stack
        self.web = Client(web_url)
        self.load = load
        self.meter = Meter(stack, database)
        self.samples: list[Sample] = []
        self.children: dict[str, dict[int, int]] = defaultdict(dict)  # worker -> pool pid -> number, as seen
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._stop = threading.Event()
        self._last = self.first = (self.meter.snapshot(), time.monotonic())
        self.cpu_seconds: dict[str, float] = {}  # component -> CPU s over the whole load

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.web.close()
        snapshot, began = self.first
        self.cpu_seconds = {name: value - snapshot.get(name, 0.0) for name, value in self.meter.snapshot().items()}
        self.cpu_seconds["(wall)"] = time.monotonic() - began

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(max(0.0, self.load.t0 + SAMPLE_EVERY_S * (len(self.samples) + 1) - time.time())):
                self.samples.append(self.sample())
        finally:
            connections.close_all()

    def sample(self) -> Sample:
        from django.db.models import Count, Q
        from django.utils import timezone

        from channels.models import InboundEvent, SyncMark
        from channels.redis_client import get_redis

        redis = get_redis()
        with redis.pipeline(transaction=False) as pipe:
            for key in broker_keys():
                pipe.llen(key)
            pipe.hlen("unacked")
            lengths = pipe.execute()
        queues = Counter()
        for key, length in zip(broker_keys(), lengths[:-1], strict=True):
            queues[key.split("\x06")[0]] += length
        marks = SyncMark.objects.pending().aggregate(
            pending=Count("pk"), due=Count("pk", filter=Q(due_at__lte=timezone.now())))
        rss = {}
        for name in [*(worker for worker, _, _ in WORKERS), "web"]:
            main, *pool = process_tree(self.stack.children[name].pid)
            rss[f"{name} main"] = rss_mb(main)
            for pid in pool:  # numbered as first seen: a replaced process gets a new number
                number = self.children[name].setdefault(pid, len(self.children[name]) + 1)
                rss[f"{name} #{number}"] = rss_mb(pid)
        snapshot, now = self.meter.snapshot(), time.monotonic()
        before, then = self._last
        self._last = (snapshot, now)
        cpu = {name: 100 * (snapshot.get(name, 0.0) - before.get(name, 0.0)) / (now - then) for name in before}
        health = []
        for _ in range(5):
            began = time.perf_counter()
            status, _ = self.web.call("GET", "/health/")
            if status == 200:
                health.append((time.perf_counter() - began) * 1000)
        with self.load.tally.lock:
            issued, sales = self.load.sent, sum(self.load.tally.sales.values())
        return Sample(
            at=time.time() - self.load.t0, queues=dict(queues), unacked=lengths[-1],
            marks_pending=marks["pending"], marks_due=marks["due"],
            inbound_backlog=InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).count(),
            rss=rss, cpu=cpu, health_ms=statistics.median(health) if health else math.nan,
            issued=issued, sales=sales,
        )


# --- latency, drain, convergence ----------------------------------------------------------------


def attempts_since(started_at: float) -> list[tuple[int, float, float | None, str]]:
    """(channel id, commit time in unix s, latency ms, status) of every attempt whose change
    was committed at or after `started_at`."""
    from datetime import datetime, timezone

    from channels.models import SyncAttempt

    since = datetime.fromtimestamp(started_at, tz=timezone.utc)
    return [(channel_id, committed.timestamp(), latency, status)
            for channel_id, committed, latency, status in SyncAttempt.objects.filter(committed_at__gte=since)
            .values_list("channel_id", "committed_at", "latency_ms", "status").iterator(chunk_size=5000)]


def probe_latency(*, web_url: str, token: str, skus: list[str], channel_ids: dict[str, int], seconds: int = 20
                  ) -> dict[str, Summary]:
    """The latency probe with no other load: one price edit a second, commit -> each channel's
    2xx; kind -> Summary (ms), and "all"."""
    client = Client(web_url, {"Authorization": f"Token {token}"})
    began = time.time()
    for n in range(seconds):
        status, answer = client.call("PATCH", f"/api/v1/variants/{skus[n * 7 % len(skus)]}/", {"price": f"{11 + n / 100:.2f}"})
        if status != 200:
            raise LoadError(f"probe edit -> {status} {answer[:200]!r}")
        if STOPPING.wait(max(0.0, began + n + 1 - time.time())):
            break
    client.close()
    wait_drained(channel_ids, timeout=60, what="the latency probe")
    rows = [row for row in attempts_since(began) if row[3] == "success"]
    by_kind = {kind: Summary.of(r[2] for r in rows if r[0] == pk) for kind, pk in channel_ids.items()}
    return {**by_kind, "all": Summary.of(r[2] for r in rows)}


def wait_drained(channel_ids: dict[str, int], *, timeout: float, what: str, sales: int | None = None) -> float:
    """Until no mark is owed, no inbound event waits, and (given `sales`) the ledger holds that
    many sales; returns the seconds it took."""
    from channels.models import InboundEvent, SyncMark
    from inventory.models import StockMovement

    began = time.monotonic()
    while True:
        pending = SyncMark.objects.pending().filter(channel_id__in=channel_ids.values())
        backlog = InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).count()
        sold = StockMovement.objects.filter(reason="sale").count() if sales is not None else None
        if not pending.exists() and not backlog and (sales is None or sold >= sales):
            return time.monotonic() - began
        if time.monotonic() - began > timeout or STOPPING.is_set():
            errors = list(pending.exclude(last_error="").values_list("last_error", flat=True)[:3])
            raise LoadError(f"{what} did not drain in {timeout:.0f} s: {pending.count()} marks owed (errors {errors}), "
                            f"{backlog} inbound events unapplied, ledger sales {sold} of {sales}")
        time.sleep(0.2)


def divergences(sandbox_url: str, stores: dict[str, str], channel_ids: dict[str, int]) -> list[str]:
    """Every store item whose price or stock differs from the DB (stock as the channel is shown it)."""
    from channels.models import Channel
    from channels.safety import shown_quantities
    from inventory.models import Variant

    variants = {sku: (pk, price) for pk, sku, price in Variant.objects.filter(sku__startswith="LOAD-")
                .values_list("pk", "sku", "price")}
    control = Client(sandbox_url)
    found = []
    for kind, store in stores.items():
        channel = Channel.objects.get(pk=channel_ids[kind])
        shown = shown_quantities(channel, None, [pk for pk, _ in variants.values()])
        status, body = control.call("GET", f"/_sandbox/{kind}/{store}/items")
        if status != 200:
            raise LoadError(f"reading {kind}/{store}: {status}")
        items = {item["sku"]: item for item in json.loads(body)["items"]}
        for sku, (pk, price) in variants.items():
            item = items.get(sku) or {}
            if item.get("price") is None or Decimal(str(item["price"])) != price:
                found.append(f"{kind} {sku} price {item.get('price')} != DB {price}")
            if item.get("available") != shown[pk]:
                found.append(f"{kind} {sku} available {item.get('available')} != shown {shown[pk]}")
    control.close()
    return found


def ledger_problems(tally: Tally) -> list[str]:
    """Sales counted other than once, and stock that is not seed + adjustments - sales."""
    from django.db.models import Sum

    from inventory.models import StockLevel, StockMovement

    found = []
    sold = dict(StockMovement.objects.filter(reason="sale").values("variant__sku").annotate(units=Sum("delta"))
                .values_list("variant__sku", "units"))
    for sku in set(sold) | set(tally.sales):
        if -(sold.get(sku) or 0) != tally.sales.get(sku, 0):
            found.append(f"{sku}: the ledger holds {-(sold.get(sku) or 0)} units sold, the stores sold {tally.sales.get(sku, 0)}")
    on_hand = dict(StockLevel.objects.filter(variant__sku__startswith="LOAD-").values("variant__sku")
                   .annotate(units=Sum("on_hand")).values_list("variant__sku", "units"))
    for sku, units in on_hand.items():
        expected = SEED_UNITS + tally.deltas.get(sku, 0) - tally.sales.get(sku, 0)
        if units != expected:
            found.append(f"{sku}: on hand {units} != seed + adjustments - sales = {expected}")
    return found


# --- the report ---------------------------------------------------------------------------------


def fit_slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (y per unit of x); NaN with fewer than two points."""
    points = [(x, y) for x, y in points if not math.isnan(y)]
    if len(points) < 2:
        return math.nan
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else math.nan


def thirds(values: list[tuple[float, float]], duration: float) -> tuple[list[float], list[float]]:
    """The values of (time, value) pairs in the first and the last third of the load."""
    return ([v for t, v in values if t < duration / 3], [v for t, v in values if t >= 2 * duration / 3])


def mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}×"


@dataclass
class Run:
    args: argparse.Namespace
    channel_ids: dict[str, int]
    baseline_health: tuple[float, Summary]
    closing_health: tuple[float, Summary]
    baseline_latency: dict[str, Summary]
    load: Load
    samples: list[Sample]
    children: dict[str, dict[int, int]]
    cpu_seconds: dict[str, float]
    attempts: list[tuple[int, float, float | None, str]]
    drain_s: float | None
    diverged: list[str]
    ledger: list[str]
    seeded_in_s: float

    @property
    def duration(self) -> float:
        """Seconds the load lasted: the schedule's, or longer when the answers fell behind it."""
        return max(self.args.duration, self.load.ended_at - self.load.t0)

    def latencies(self, channel_id: int | None = None) -> list[tuple[float, float]]:
        return [(committed - self.load.t0, latency) for pk, committed, latency, status in self.attempts
                if status == "success" and latency is not None and channel_id in (None, pk)]

    def markdown(self) -> str:
        args, load = self.args, self.load
        ops = sorted(load.tally.ops)
        ok = [op for op in ops if op[4] in (200, 201)]
        achieved = len(ok) / self.duration
        lateness = Summary.of((began - due) * 1000 for due, began, _, _, _ in ops)
        calls = Summary.of((ended - began) * 1000 for _, began, ended, _, _ in ops)
        sales_ok = sum(load.tally.sales.values())
        refused = sum(1 for _, status in load.tally.sale_calls if status == 409)
        sale_errors = sum(1 for _, status in load.tally.sale_calls if not 200 <= status < 300 and status != 409)
        verdicts, ratios = self.verdicts(achieved, lateness)
        lines = [
            "# Load held",
            "",
            f"`benchmarks/load_held.py --duration {args.duration:g} --rate {args.rate:g} --sales-rate {args.sales_rate:g} "
            f"--skus {args.skus}` on {machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
            f"Channels: {', '.join(args.kinds)} (Shopify plan {args.shopify_plan}), one sandbox store each; sales on "
            f"{', '.join(k for k in args.kinds if k in SALE_KINDS) or 'none'}. Workers: "
            + ", ".join(f"{name} `-Q {queues} -c {concurrency}`" for name, queues, concurrency in WORKERS)
            + f"; web gunicorn {WEB_WORKERS} × {WEB_THREADS} threads; beat. Catalog seeded and in sync in {self.seeded_in_s:.0f} s.",
            "",
            "## Verdicts",
            "",
            *[f"- {line}" for line in verdicts],
            "",
            "## Load",
            "",
            f"- Changes: {len(ok):,} accepted of {len(ops):,} issued in {self.duration:.0f} s (scheduled "
            f"{args.duration:g} s; {achieved:.1f}/s of {args.rate:g}/s target; "
            f"{len(ops) - len(ok)} not 2xx); lateness against the open-loop schedule p50 {ms(lateness.p50)} ms, "
            f"p99 {ms(lateness.p99)} ms, max {ms(lateness.max)} ms; API call incl. commit p50 {ms(calls.p50)} ms, "
            f"p99 {ms(calls.p99)} ms.",
            f"- Sales: {sales_ok:,} made by the stores ({sales_ok / self.duration:.1f}/s), {refused} refused (store "
            f"stock short), {sale_errors} control calls failed.",
            f"- Drain after the load: {'%.1f s' % self.drain_s if self.drain_s is not None else '**did not drain**'}; "
            f"stores vs DB: {'all equal' if not self.diverged else f'**{len(self.diverged)} differ**, e.g. {self.diverged[:3]}'}; "
            f"ledger: {'every sale once, stock = seed + adjustments - sales' if not self.ledger else f'**{len(self.ledger)} problems**, e.g. {self.ledger[:3]}'}.",
            *([f"- API errors (first): {load.errors[:3]}"] if load.errors else []),
            "",
            "## CPU per accepted change, over the load (ms of CPU time)",
            "",
            self.cpu_table(len(ok)),
            "",
            "## Baseline (same run, no load) and ratios",
            "",
            self.baseline_table(ratios),
            "",
            f"## Per {args.bucket:g} s: load, broker and owed work",
            "",
            self.load_table(),
            "",
            f"## Per {args.bucket:g} s: latency commit → channel 2xx, p50 / p99 ms",
            "",
            self.latency_table(),
            "",
            f"## Per {args.bucket:g} s: RSS (MB, mean of the samples) and CPU (% of one CPU)",
            "",
            self.memory_table(),
            "",
            "Broker depth: LLEN of the Celery queues (sync, inbound, maintenance, bulk) plus unacked messages "
            "(reserved by a worker, incl. countdown wake-ups); owed: pending marks in the DB (due now / all, the "
            "rest are held back on purpose: hot SKUs coalescing, rate limits); inbound: webhooks stored, not "
            "applied yet. Numbers are the max of the 10 s samples in the row. CPU this run: its processes (the "
            "sandbox and the load generator included) and the PostgreSQL backends of its database (Redis is "
            "shared, left out); CPU others = the machine's busy time minus this run's. Latency rows: changes "
            "committed in that interval.",
        ]
        return "\n".join(lines) + "\n"

    def verdicts(self, achieved: float, lateness: Summary) -> tuple[list[str], dict[str, float]]:
        args = self.args
        samples = self.samples
        found = []
        sustained = achieved >= 0.98 * args.rate and lateness.p99 < 1000
        found.append(f"{'sustained' if sustained else '**not sustained**'}: {achieved:.1f} changes/s accepted of "
                     f"{args.rate:g}/s, p99 lateness {ms(lateness.p99)} ms (needs ≥ 98 % and < 1 s).")

        def flat(name: str, series: list[tuple[float, float]], floor: float) -> None:
            first, last = thirds(series, self.duration)
            growth = mean(last) - mean(first)
            slope = fit_slope(series) * 60
            ok = not math.isnan(growth) and growth <= max(0.5 * mean(first), floor)
            found.append(f"{name} {'flat' if ok else '**grows**'}: mean {mean(first):,.1f} in the first third, "
                         f"{mean(last):,.1f} in the last (slope {slope:+,.1f}/min; flat = grows by at most half the "
                         f"first third's mean or {floor:g}).")

        flat("broker depth", [(s.at, s.broker_depth + s.unacked) for s in samples], 20)
        flat("owed marks (due now)", [(s.at, s.marks_due) for s in samples], args.rate)
        flat("owed marks (all pending)", [(s.at, s.marks_pending) for s in samples], args.rate)
        # Owed work grows with the rate actually achieved (Little's law: marks ≈ rate × latency ×
        # channels); per change/s it is the seconds of changes owed, flat whenever the rate moves.
        rates = self.rates_at([s.at for s in samples])
        flat("owed marks per change/s (due now ÷ the last 10 s's rate: seconds of changes owed)",
             [(s.at, s.marks_due / rate if rate else math.nan) for s, rate in zip(samples, rates, strict=True)], 2)
        flat("inbound backlog", [(s.at, s.inbound_backlog) for s in samples], max(10, 2 * args.sales_rate))

        health_first, health_last = thirds([(s.at, s.health_ms) for s in samples], self.duration)
        health_drift = mean(health_last) / mean(health_first) if health_first and health_last else math.nan
        ratios = {"health_drift": health_drift}
        for label, pk in [("all channels", None), *self.channel_ids.items()]:
            first, last = thirds(self.latencies(pk), self.duration)
            p99_first, p99_last = Summary.of(first).p99, Summary.of(last).p99
            factor = p99_last / p99_first if p99_first else math.nan
            ok = not math.isnan(factor) and factor <= P99_FACTOR
            found.append(f"p99 {label} {'stable' if ok else '**not stable**'}: {ms(p99_first)} ms in the first third, "
                         f"{ms(p99_last)} ms in the last ({times(factor)}; stable = within {P99_FACTOR:g}×; the "
                         f"machine's `/health/` latency moved {times(health_drift)} meanwhile).")
            ratios[label] = Summary.of(v for _, v in self.latencies(pk)).p99
        found += self.memory_verdicts()
        others = mean([max(0.0, s.cpu.get("(machine busy)", math.nan) - ours(s.cpu)) for s in samples])
        found.append(f"(the machine: other processes used {others:.0f}% of one CPU on average during the load, "
                     f"of {100 * self.cpu_count}%; /health/ answered in {ms(self.baseline_health[1].p50)} ms before "
                     f"the load and {ms(mean([s.health_ms for s in samples]))} ms on average during it.)")
        return found, ratios

    def rates_at(self, moments: list[float]) -> list[float]:
        """Changes/s answered in the SAMPLE_EVERY_S before each moment (seconds since t0)."""
        began = sorted(op[1] - self.load.t0 for op in self.load.tally.ops)
        return [(bisect.bisect_right(began, at) - bisect.bisect_right(began, at - SAMPLE_EVERY_S)) / SAMPLE_EVERY_S
                for at in moments]

    def memory_verdicts(self) -> list[str]:
        """Per worker (and the web): RSS in all, and the process whose RSS grew fastest."""
        warm = min(60.0, self.duration / 3)  # imports, caches and pools fill up first
        samples = [s for s in self.samples if s.at >= warm]
        found = []
        for group in [*(name for name, _, _ in WORKERS), "web"]:
            processes = sorted({name for s in samples for name in s.rss if name.startswith(f"{group} ")})
            if not processes:
                continue
            slopes = {p: fit_slope([(s.at, s.rss.get(p, math.nan)) for s in samples]) * 600 for p in processes}
            total = fit_slope([(s.at, sum(s.rss.get(p, 0.0) for p in processes)) for s in samples]) * 600
            worst = max(processes, key=lambda p: -math.inf if math.isnan(slopes[p]) else slopes[p])
            ok = all(not math.isnan(v) and v < RSS_MB_PER_10_MIN for v in slopes.values())
            size = mean([sum(s.rss.get(p, 0.0) for p in processes) for s in samples])
            expected = {name: concurrency for name, _, concurrency in WORKERS}.get(group, WEB_WORKERS)
            replaced = len(self.children.get(group, {})) - expected
            found.append(
                f"RSS {group} {'stable' if ok else '**grows**'}: {size:.0f} MB in {len(processes)} processes, "
                f"{total:+.1f} MB per 10 min in all; fastest {worst} {slopes[worst]:+.1f} MB per 10 min "
                f"(least-squares slope after {warm:.0f} s; stable = every process < {RSS_MB_PER_10_MIN:g} MB per 10 min)"
                + (f"; {replaced} pool processes were replaced" if replaced > 0 else "") + ".")
        return found

    def baseline_table(self, ratios: dict[str, float]) -> str:
        rate, health = self.baseline_health
        closing_rate, closing = self.closing_health
        loaded_health = [s.health_ms for s in self.samples]
        rows = [
            ["`GET /health/` answers/s (4 clients, 5 s)", f"{rate:,.0f}", "", f"{closing_rate:,.0f} after the load",
             f"{times(closing_rate / rate if rate else math.nan)} (end / start: the machine's drift)"],
            ["`GET /health/` latency p50 ms", ms(health.p50), ms(statistics.median(loaded_health) if loaded_health else math.nan),
             ms(closing.p50), times(statistics.median(loaded_health) / health.p50 if loaded_health and health.p50 else math.nan)],
        ]
        for label in ["all", *self.channel_ids]:
            key = "all channels" if label == "all" else label
            base = self.baseline_latency.get(label)
            if base is None:
                continue
            loaded = ratios.get(key, math.nan)
            rows.append([f"latency p99 ms, {key} (probe: 1 edit/s, 20 s)", ms(base.p99), ms(loaded), "",
                         times(loaded / base.p99 if base.p99 else math.nan)])
        return markdown_table(["measure", "baseline (no load)", "under load", "closing", "ratio load / baseline"], rows)

    def cpu_table(self, changes: int) -> str:
        """Where the CPU went, per change accepted: what 2 cores can carry at best."""
        seconds = dict(self.cpu_seconds)
        wall = seconds.pop("(wall)", math.nan)
        shared = {name: seconds.pop(name) for name in list(seconds) if name.startswith("(")}
        used = sum(seconds.values())
        rows = [[name, f"{1000 * value / changes:.1f}" if changes else "n/a", f"{100 * value / wall:.0f}"]
                for name, value in sorted(seconds.items(), key=lambda kv: -kv[1])]
        rows.append(["**this run**", f"{1000 * used / changes:.1f}" if changes else "n/a", f"{100 * used / wall:.0f}"])
        busy = shared.get("(machine busy)", math.nan)
        rows.append(["(PostgreSQL, whole server: all databases)", "",
                     f"{100 * shared.get('(postgres, whole server)', math.nan) / wall:.0f}"])
        rows.append(["(Redis, whole server)", "", f"{100 * shared.get('(redis, whole server)', math.nan) / wall:.0f}"])
        rows.append(["(others on the machine: busy - this run)", "", f"{100 * max(0.0, busy - used) / wall:.0f}"])
        rows.append(["(steal: the hypervisor)", "", f"{100 * shared.get('(machine steal)', math.nan) / wall:.0f}"])
        per_change = used / changes if changes else math.nan
        note = (f"At {1000 * per_change:.1f} ms of CPU per change (the sandbox and the load generator included), "
                f"{self.cpu_count} CPUs carry at most {self.cpu_count / per_change:,.0f} changes/s with nothing else "
                f"running; this run had {max(0.0, self.cpu_count - max(0.0, busy - used) / wall):.1f} CPUs left by the "
                f"other processes.") if changes and per_change else ""
        return markdown_table(["component", "CPU ms per change", "% of one CPU"], rows) + "\n\n" + note

    @property
    def cpu_count(self) -> int:
        return len(os.sched_getaffinity(0))

    def buckets(self) -> list[tuple[float, float]]:
        width = self.args.bucket
        return [(start, min(start + width, self.duration)) for start in
                [n * width for n in range(math.ceil(self.duration / width))]]

    def load_table(self) -> str:
        rows = []
        ops = self.load.tally.ops
        for start, end in self.buckets():
            inside = [s for s in self.samples if start < s.at <= end + 0.5]
            done = [op for op in ops if start <= op[1] - self.load.t0 < end]
            late = Summary.of((began - due) * 1000 for due, began, _, _, _ in done)
            sales = sum(1 for at, status in self.load.tally.sale_calls
                        if start <= at - self.load.t0 < end and 200 <= status < 300)
            span = max(end - start, 1e-9)

            def top(value, inside=inside) -> str:
                return f"{max(value(s) for s in inside):,}" if inside else "n/a"

            rows.append([
                f"{start:.0f}–{end:.0f} s", f"{len(done) / span:.1f}", ms(late.p99, 0), f"{sales / span:.1f}",
                top(lambda s: s.queues.get("sync", 0)), top(lambda s: s.queues.get("inbound", 0)),
                top(lambda s: s.queues.get("maintenance", 0) + s.queues.get("bulk", 0)), top(lambda s: s.unacked),
                f"{top(lambda s: s.marks_due)} / {top(lambda s: s.marks_pending)}", top(lambda s: s.inbound_backlog),
                ms(max((s.health_ms for s in inside), default=math.nan)),
            ])
        return markdown_table(["interval", "changes/s", "late p99 ms", "sales/s", "queue sync", "queue inbound",
                               "queue maint.+bulk", "unacked", "owed due / all", "inbound backlog",
                               "/health/ ms (max)"], rows)

    def latency_table(self) -> str:
        columns = [("all", None), *self.channel_ids.items()]
        series = {label: self.latencies(pk) for label, pk in columns}
        rows = []
        for start, end in self.buckets():
            row = [f"{start:.0f}–{end:.0f} s"]
            for label, _ in columns:
                summary = Summary.of(v for t, v in series[label] if start <= t < end)
                row.append(f"{ms(summary.p50, 0)} / {ms(summary.p99, 0)}")
            failures = sum(1 for pk, committed, _, status in self.attempts
                           if status != "success" and start <= committed - self.load.t0 < end)
            row.append(f"{failures:,}")
            rows.append(row)
        return markdown_table(["interval", *[label for label, _ in columns], "attempts not ok"], rows)

    def memory_table(self) -> str:
        processes = sorted({name for s in self.samples for name in s.rss})
        parts = sorted({name for s in self.samples for name in s.cpu if not name.startswith("(")})
        rows = []
        for start, end in self.buckets():
            inside = [s for s in self.samples if start < s.at <= end + 0.5]
            row = [f"{start:.0f}–{end:.0f} s"]
            row += [f"{mean([s.rss.get(p, math.nan) for s in inside]):.0f}" for p in processes]
            used = mean([ours(s.cpu) for s in inside])
            busy = mean([s.cpu.get("(machine busy)", math.nan) for s in inside])
            row += [f"{mean([s.cpu.get(p, math.nan) for s in inside]):.0f}" for p in parts]
            row += [f"{used:.0f}", f"{max(0.0, busy - used):.0f}" if not math.isnan(busy) else "n/a"]
            rows.append(row)
        return markdown_table(["interval", *[f"RSS {p}" for p in processes], *[f"CPU {p}" for p in parts],
                               "CPU this run", "CPU others"], rows)


# --- the whole run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack, sandbox_url: str, web_url: str) -> Run:
    from django.db import connection

    from channels.models import Channel
    from channels.services.owe import channel_owe_all

    run_id = uuid.uuid4().hex[:6]
    began = time.monotonic()
    catalog = seed_catalog(args.skus)
    stores = {kind: f"load-{run_id}-{kind}" for kind in args.kinds}
    seed_stores(sandbox_url, stores, catalog)
    channel_ids = make_channels(sandbox_url, web_url, stores, args.shopify_plan)
    for channel in Channel.objects.filter(pk__in=channel_ids.values()):
        channel_owe_all(channel=channel)
    log(f"{len(catalog):,} SKUs seeded, {len(stores)} stores; waiting for the first sync ...")
    wait_drained(channel_ids, timeout=max(args.drain_timeout, 600), what="the first sync")
    found = divergences(sandbox_url, stores, channel_ids)
    if found:
        raise LoadError(f"the first sync left {len(found)} differences, e.g. {found[:5]}")
    seeded_in_s = time.monotonic() - began
    log(f"every store equals the DB ({seeded_in_s:.0f} s); baseline ...")
    token = pim_token()
    skus = [sku for _, sku, _ in catalog]
    baseline_health = health_rate(web_url)
    baseline_latency = probe_latency(web_url=web_url, token=token, skus=skus, channel_ids=channel_ids)
    log(f"baseline: /health/ {baseline_health[0]:,.0f}/s (p50 {ms(baseline_health[1].p50)} ms); probe latency p99 "
        + ", ".join(f"{kind} {ms(s.p99, 0)} ms" for kind, s in baseline_latency.items()))

    load = Load(web_url=web_url, sandbox_url=sandbox_url, token=token, skus=skus,
                sale_stores=[(kind, stores[kind]) for kind in args.kinds if kind in SALE_KINDS],
                rate=args.rate, sales_rate=args.sales_rate, duration=args.duration, threads=args.threads,
                seed=args.seed, run_id=run_id)
    sampler = Sampler(stack=stack, web_url=web_url, load=load, database=connection.settings_dict["NAME"])
    log(f"load: {load.count:,} changes at {args.rate:g}/s and {args.sales_rate:g} sales/s for {args.duration:g} s ...")
    load.start()
    sampler.start()
    try:
        progress = threading.Thread(target=_progress, args=(sampler, load), daemon=True)
        progress.start()
        load.join()
    finally:
        sampler.stop()
    if STOPPING.is_set():
        raise LoadError("interrupted")
    sales = sum(load.tally.sales.values())
    drain_s = None
    try:
        # The seed writes receipts only: every sale in the ledger comes from the load.
        drain_s = wait_drained(channel_ids, timeout=args.drain_timeout, what="the backlog after the load", sales=sales)
    except LoadError as exc:
        log(str(exc))
    diverged = divergences(sandbox_url, stores, channel_ids)
    ledger = ledger_problems(load.tally)
    closing_health = health_rate(web_url)
    return Run(args=args, channel_ids=channel_ids, baseline_health=baseline_health, closing_health=closing_health,
               baseline_latency=baseline_latency, load=load, samples=sampler.samples, children=sampler.children,
               cpu_seconds=sampler.cpu_seconds,
               attempts=attempts_since(load.t0), drain_s=drain_s, diverged=diverged, ledger=ledger,
               seeded_in_s=seeded_in_s)


def _progress(sampler: Sampler, load: Load) -> None:
    """A line a minute while the load runs, to watch it from the console."""
    shown = 0
    while not load._done.is_set():
        time.sleep(1)
        samples = sampler.samples
        if len(samples) >= shown + 6 or (samples and shown == 0):
            shown = len(samples)
            s = samples[-1]
            log(f"t={s.at:.0f} s: {s.issued:,} changes, {s.sales} sales; broker {s.broker_depth} (+{s.unacked} unacked); "
                f"owed {s.marks_due} due / {s.marks_pending}; inbound backlog {s.inbound_backlog}; "
                f"/health/ {ms(s.health_ms)} ms; RSS " + ", ".join(f"{k} {v:.0f}" for k, v in s.rss.items() if "main" in k))


def _terminate(signum, frame):
    STOPPING.set()
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    source_url = os.environ.get("DATABASE_URL") or default_database_url()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"
    db = bench_database(source_url)
    log(f"database {db.describe()}; redis {redact(redis_url)}")
    create_database(db)
    os.environ.update({"DATABASE_URL": db.url, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "syncsvc.settings"})
    stack = None
    result = None
    try:
        import django

        django.setup()
        logging.disable(logging.INFO)  # this process's own service calls (seeding) would flood the console
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        clean_redis()
        stack, sandbox_url, web_url = start_stack({**os.environ, "PYTHONUNBUFFERED": "1"})
        result = run(args, stack, sandbox_url, web_url)
        report = result.markdown()
    except LoadError as exc:
        print(f"load: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, SystemExit):
        STOPPING.set()
        print("load: interrupted; stopping the children and dropping the bench database", file=sys.stderr, flush=True)
        raise
    finally:
        if stack is not None:
            stack.stop()
        from django.db import connections

        connections.close_all()
        drop_database(db)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    print()
    print(report, flush=True)
    log(f"written to {RESULTS.relative_to(ROOT)}")
    return 1 if result.diverged or result.ledger or result.drain_s is None else 0


if __name__ == "__main__":
    sys.exit(main())
