#!/usr/bin/env python
"""`make bench`: measure syncsvc end to end against real processes and print a Markdown table.

    python benchmarks/run.py [--duration 60] [--rate 50] [--skip naive|coalesced|ingest|shopify|inbound|synclog]
                             [--synclog-rows 10000000]

$DATABASE_URL / $REDIS_URL come from the caller (defaults, printed: PostgreSQL on
127.0.0.1:5432 as postgres if it answers, else SQLite; Redis 127.0.0.1:6379 db 12). The
database is only used to derive the bench's own: `<name>_bench` on the same PostgreSQL server
(dropped and created, dropped again at the end) or `var/bench.sqlite3`. Through
`syncsvc.processes.ProcessStack` it starts the sandbox, the sync Celery worker (concurrency 4,
with `benchmarks/probes.py` timing its flushes), beat, and a second worker (concurrency 4,
queue `bench`) for the naive baseline, then measures:

1. steady state, coalesced: `--rate` changes/s for `--duration` s (70 % price updates through
   `variant_update`, 30 % stock adjustments through `stock_adjust`, uniformly over 2,000 SKUs),
   issued open loop on a fixed schedule from several threads, over 3 webhook channels each on
   its own sandbox store (signature secret set through the control API). The catalog is seeded
   and delivered before the window opens. Latency is `SyncAttempt.latency_ms` (commit of the
   oldest undelivered change -> the channel's 2xx), success rows of the window only, with a
   per-hop breakdown; requests are the POSTs the stores logged; afterwards every store must show
   the DB's price and availability for every SKU (else exit 1).
2. steady state, naive: the same schedule, SKUs and kinds; the engine's channels disabled and
   an after-commit hook sending one `bench.naive_push` task per change per channel
   (`benchmarks/naive.py`), which reads the current state and POSTs one signed event.
3. ingest: `POST /api/v1/prices/bulk/` with 10,000 rows through the real Django view (DRF's
   APIClient, token of a `pim` user) over 10,000 SKUs with 3 channels defined (30,000 marks
   upserted in the same transaction; the channels are disabled so no flush competes); the
   median of 3 runs, plus the service call alone for comparison.
4. shopify: issue 3's burst (`benchmarks/shopify_burst.py`, on this stack): 10,000 price changes
   over 1,000 products x 10 variants into a Standard-plan Shopify store, its drain against the
   floor the store's bucket sets, and the naive one-call-per-change strategy (a slice of
   `--shopify-naive-changes`, extrapolated to 10,000).
5. inbound: issue 4's benchmarks (`benchmarks/inbound.py`, on this stack plus a gunicorn web
   process): signed order webhooks per second verified, stored and applied (counts exact)
   beside the same stack's `/health/` rate, and a flash sale over three stores per buffer
   setting, counting oversells.
6. synclog: the sync log at `--synclog-rows` rows (`benchmarks/synclog.py`, no process
   needed: alone, with every other measurement skipped, the stack is not started):
   `GET /api/v1/sync-logs/` per query shape, first and deep keyset page, with migration 0005's
   indexes and with 0006's, and the retention delete of one day.

Also reports CPU per component (psutil) and PostgreSQL's counters per steady-state run, to
show what limits the numbers. Writes the report to var/bench-results.md (child logs in
var/bench-logs/). Exits 0 whether or not targets are met; 1 on errors (a run that does not
drain, stores that do not converge to the DB, a failed request).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support import (  # noqa: E402
    VAR,
    BenchDatabase,
    Sandbox,
    Summary,
    bench_database,
    create_database,
    default_database_url,
    drop_database,
    machine,
    markdown_table,
    ms,
    ratio,
    redact,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
CHANNELS = 3
SECRET = "bench-secret"
PRICE_SHARE = 0.7
VARIANTS_PER_PRODUCT = 100
WORKER_CONCURRENCY = 4
TARGET_P50_MS = 50.0
TARGET_P99_MS = 200.0
TARGET_INGEST_ROWS_S = 10_000.0
RESULTS = VAR / "bench-results.md"
NAIVE_QUEUE = "bench"
LOG_DIR = VAR / "bench-logs"
STACK_MEASUREMENTS = ("coalesced", "naive", "ingest", "shopify", "inbound")
STOPPING = threading.Event()  # set on SIGTERM/SIGINT: the issuing threads stop at once


class BenchError(RuntimeError):
    """The run could not be measured (did not drain, did not converge, a call failed)."""


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each steady-state run (60)")
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second in the steady state (50)")
    parser.add_argument("--skus", type=int, default=2_000, help="SKUs the steady state picks from (2,000)")
    parser.add_argument("--ingest-rows", type=int, default=10_000, help="rows per bulk request (10,000)")
    parser.add_argument("--ingest-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="threads issuing the steady-state changes (8)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for delivery to finish")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["coalesced", "naive", "ingest", "shopify", "inbound", "synclog"],
                        help="leave a measurement out (while developing)")
    parser.add_argument("--shopify-naive-changes", type=int, default=1_000,
                        help="changes the Shopify burst's naive strategy runs before extrapolating (1,000; 10,000 = all)")
    parser.add_argument("--synclog-rows", type=int, default=10_000_000,
                        help="sync log rows the log's query and retention benchmark generates (10,000,000)")
    args = parser.parse_args(argv)
    if args.ingest_rows < args.skus:
        parser.error("--ingest-rows must be at least --skus (the ingest covers the steady-state SKUs too)")
    return args


# --- the workload -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    index: int
    kind: str  # "price" | "stock"
    variant_id: int
    sku: str
    price: Decimal | None = None
    delta: int = 0


def plan(*, variants: list[tuple[int, str]], rate: float, duration: float, seed: int, run_no: int) -> list[Op]:
    """The schedule of one steady-state run. The same seed gives both strategies the same SKUs
    and kinds in the same order; prices carry the run number so every one is a real change."""
    rng = random.Random(seed)
    ops = []
    for index in range(int(rate * duration)):
        variant_id, sku = variants[rng.randrange(len(variants))]
        is_price = rng.random() < PRICE_SHARE
        delta = rng.choice((-3, -2, -1, 1, 2, 3))
        if is_price:
            price = Decimal(100_000 * (run_no + 1) + index) / 100
            ops.append(Op(index, "price", variant_id, sku, price=price))
        else:
            ops.append(Op(index, "stock", variant_id, sku, delta=delta))
    return ops


@dataclass
class DriveResult:
    started_at: float  # unix seconds, just before the first change
    ended_at: float
    issued: int
    lag: Summary  # how late each change was issued against its schedule (ms)
    call: Summary  # how long the service call took, commit included (ms)


def drive(ops: list[Op], *, rate: float, threads: int, run_tag: str) -> DriveResult:
    """Issue `ops` open loop: op i at t0 + i/rate, whatever happened to the earlier ones.

    Several threads (each with its own DB connection) share the schedule, so one slow commit
    delays only its own thread's next change, not the whole stream.
    """
    from django.db import connections

    from inventory import services
    from inventory.models import Variant

    lags: list[float] = []
    calls: list[float] = []
    errors: list[BaseException] = []
    t0 = time.time() + 0.3

    def issue(op: Op) -> None:
        if op.kind == "price":
            services.variant_update(variant=Variant(pk=op.variant_id), fields={"price": op.price}, origin="bench")
        else:
            services.stock_adjust(
                sku=op.sku, delta=op.delta, reason="receipt" if op.delta > 0 else "sale",
                reference=f"{run_tag}-{op.index}", source="bench",
            )

    def worker(k: int) -> None:
        try:
            for op in ops[k::threads]:
                due = t0 + op.index / rate
                delay = due - time.time()
                if delay > 0 and STOPPING.wait(delay):
                    return
                began = time.time()
                issue(op)
                lags.append((began - due) * 1000)
                calls.append((time.time() - began) * 1000)
                if errors or STOPPING.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(k,), name=f"issuer-{k}", daemon=True) for k in range(threads)]
    for thread in pool:
        thread.start()
    try:
        for thread in pool:
            thread.join()
    finally:
        if sys.exc_info()[0] is not None:  # interrupted: let the issuers go before tearing down
            STOPPING.set()
            for thread in pool:
                thread.join(timeout=5)
    if errors:
        raise BenchError(f"issuing changes failed: {errors[0]!r}") from errors[0]
    return DriveResult(t0, time.time(), len(calls), Summary.of(lags), Summary.of(calls))


# --- the bench --------------------------------------------------------------------------------


@dataclass
class SteadyResult:
    latency: Summary
    requests: int
    items: int  # deliveries (success attempts / naive 2xx)
    attempts: int
    failures: int
    drive: DriveResult
    drain_s: float
    hops: dict[str, Summary]
    verified: str
    server_ms: Summary
    task_ms: Summary
    extra: list[str] = field(default_factory=list)
    cpu: str = ""
    db: str = ""


class CpuMeter:
    """CPU seconds used by each part of the system (psutil), to see where a run's time goes on
    a machine this size: the issuing process, each child (with its pool processes),
    PostgreSQL's and Redis's server processes."""

    def __init__(self, stack) -> None:
        self.stack = stack

    def snapshot(self) -> dict[str, float]:
        try:
            import psutil
        except ImportError:
            return {}

        def busy(process) -> float:
            # Its own time plus that of children it has reaped (the postmaster's exited
            # backends: the issuing threads close their connections when they finish).
            try:
                times = process.cpu_times()
                return times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                return 0.0

        def tree(pid: int) -> float:
            try:
                root = psutil.Process(pid)
                return busy(root) + sum(busy(p) for p in root.children(recursive=True))
            except psutil.Error:
                return 0.0

        totals = {"bench (issuing changes)": busy(psutil.Process())}
        machine = _proc_stat()
        if machine:
            totals["(machine busy)"], totals["(machine iowait)"], totals["(machine steal)"] = machine
        for name, child in self.stack.children.items():
            totals[name] = tree(child.pid)
        totals["postgres"] = totals["redis"] = 0.0
        for process in psutil.process_iter(["name"]):
            name = process.info["name"] or ""
            if name.startswith("postgres"):
                totals["postgres"] += busy(process)
            elif name.startswith("redis-server"):
                totals["redis"] += busy(process)
        return totals

    @staticmethod
    def share(before: dict[str, float], after: dict[str, float], wall_s: float) -> str:
        if not before or wall_s <= 0:
            return "n/a (psutil missing)"
        used = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in before}
        machine = {name: used.pop(name) for name in list(used) if name.startswith("(machine")}
        parts = [f"{name} {100 * value / wall_s:.0f}%" for name, value in sorted(used.items(), key=lambda kv: -kv[1])]
        cpus = os.cpu_count() or 1
        ours = sum(used.values()) / wall_s
        text = f"{100 * ours:.0f}% (100% = one CPU; {cpus} CPUs) by the system under test: " + ", ".join(parts)
        if machine:
            busy = machine["(machine busy)"] / wall_s
            text += (f". Whole machine: {100 * busy:.0f}% busy, of which {100 * max(0.0, busy - ours):.0f}% by other "
                     f"processes (PostgreSQL's share above includes other databases' work); iowait "
                     f"{100 * machine['(machine iowait)'] / wall_s:.0f}%, "
                     f"steal {100 * machine['(machine steal)'] / wall_s:.0f}%")
        return text


def _proc_stat() -> tuple[float, float, float] | None:
    """CPU-seconds the whole machine spent busy, in iowait and stolen (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [float(v) for v in fields]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0.0] * 8)[:8]
    return (user + nice + system + irq + softirq) / hz, iowait / hz, steal / hz


def db_activity() -> dict[str, float]:
    """PostgreSQL's counters for the bench database (commits, sessions opened, rows written)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit, sessions, tup_inserted + tup_updated + tup_deleted, blks_read + blks_hit"
            "  FROM pg_stat_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    return dict(zip(("commits", "sessions", "rows written", "blocks touched"), map(float, row)))


def db_activity_text(before: dict[str, float], after: dict[str, float], wall_s: float, changes: int) -> str:
    if not before or wall_s <= 0:
        return ""
    delta = {name: after[name] - before[name] for name in before}
    per_change = ""
    if changes:
        per_change = (f"; {delta['commits'] / changes:.1f} commits and {delta['sessions'] / changes:.2f} "
                      "new sessions per change")
    return (f"{delta['commits'] / wall_s:,.0f} commits/s, {delta['sessions'] / wall_s:,.1f} new DB sessions/s, "
            f"{delta['rows written'] / wall_s:,.0f} rows written/s{per_change}")


class Bench:
    def __init__(self, args: argparse.Namespace, db: BenchDatabase, redis_url: str) -> None:
        self.args = args
        self.db = db
        self.redis_url = redis_url
        self.run_id = uuid.uuid4().hex[:8]
        self.probe_key = f"bench:probe:{self.run_id}"
        self.stack = None
        self.sandbox: Sandbox | None = None
        self.channel_ids: list[int] = []
        self.stores: dict[int, str] = {}
        self.steady_variants: list[tuple[int, str]] = []

    # -- set-up --------------------------------------------------------------------------------

    def start(self) -> None:
        import shutil

        from syncsvc.processes import QUEUES, ProcessStack

        shutil.rmtree(LOG_DIR, ignore_errors=True)
        LOG_DIR.mkdir(parents=True)
        env = {**os.environ, "DATABASE_URL": self.db.url, "REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1"}
        self.stack = ProcessStack(env=env, log_dir=LOG_DIR)
        url = self.stack.start_sandbox()
        self.sandbox = Sandbox(url)
        self._start_worker(
            "worker", queues=QUEUES, include="benchmarks.probes",
            extra_env={"BENCH_PROBE_KEY": self.probe_key},
        )
        self.stack.start_beat()
        self._start_worker("naive-worker", queues=NAIVE_QUEUE, include="benchmarks.naive")
        log(f"sandbox at {url}; sync worker (-c {WORKER_CONCURRENCY}), beat and naive worker started; "
            f"logs in {LOG_DIR}")

    def _start_worker(self, name: str, *, queues: str, include: str, extra_env: dict[str, str] | None = None) -> None:
        """`ProcessStack.start_worker`'s command plus `--include` (the naive task, or the
        timing probes of the sync worker)."""
        from syncsvc.processes import wait_for

        argv = [sys.executable, "-m", "celery", "-A", "syncsvc", "worker", "-Q", queues, "-c", str(WORKER_CONCURRENCY),
                "--include", include, "--pool", "prefork", "-l", "info", "-n", f"{name}-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle"]
        env = self.stack.env
        if extra_env:
            self.stack.env = {**env, **extra_env}
        try:
            child = self.stack.spawn(name, argv)
        finally:
            self.stack.env = env
        wait_for(lambda: b"ready." in child.log_path.read_bytes() or not child.alive(), timeout=60,
                 message=f"{name} did not start:\n{child.log_tail()}")
        if not child.alive():
            raise BenchError(f"{name} died:\n{child.log_tail()}")

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        try:
            from channels.redis_client import get_redis

            get_redis().delete(self.probe_key, f"bench:naive:{self.run_id}")
        except Exception:  # noqa: BLE001 (clean-up must not hide the run's own error)
            pass

    def clean_redis(self) -> None:
        from channels.redis_client import get_redis

        redis = get_redis()
        for pattern in ("syncsvc:wake:*", "syncsvc:bucket:*", "bench:naive:*", "bench:probe:*"):
            for key in redis.scan_iter(pattern):
                redis.delete(key)

    def seed_catalog(self, first: int, count: int) -> list[tuple[int, str]]:
        """Products of 100 variants each, made through the service the PIM uses."""
        from inventory import services
        from inventory.models import Variant

        for start in range(first, first + count, VARIANTS_PER_PRODUCT):
            end = min(start + VARIANTS_PER_PRODUCT, first + count)
            services.product_create(
                handle=f"bench-{start // VARIANTS_PER_PRODUCT:05d}",
                title=f"Bench product {start // VARIANTS_PER_PRODUCT}",
                variants=[{"sku": f"BENCH-{i:05d}", "price": Decimal("10.00")} for i in range(start, end)],
                origin="seed",
            )
        skus = [f"BENCH-{i:05d}" for i in range(first, first + count)]
        return list(Variant.objects.filter(sku__in=skus).order_by("sku").values_list("pk", "sku"))

    def seed_stock(self, units: int) -> None:
        """A receipt of `units` for every steady-state SKU, written set-based as an import would
        (one ledger row and one level each, one inventory change each), before any channel
        exists. Not measured; `stock_adjust` row by row costs ~6 ms a row here."""
        from django.db import transaction

        from inventory import services
        from inventory.capture import suppressed
        from inventory.models import StockLevel, StockMovement

        ids = [pk for pk, _ in self.steady_variants]
        with transaction.atomic(), suppressed():
            StockMovement.objects.bulk_create(
                StockMovement(variant_id=pk, location="default", delta=units, reason=StockMovement.Reason.RECEIPT,
                              source="bench", reference=f"seed-{pk}", on_hand_after=units, reserved_after=0)
                for pk in ids
            )
            StockLevel.objects.bulk_create(StockLevel(variant_id=pk, location="default", on_hand=units) for pk in ids)
            services.changes_record(variant_ids=ids, aspect="inventory", origin="seed")

    def seed(self) -> None:
        from channels.models import Channel
        from channels.services.owe import channel_owe_all

        began = time.monotonic()
        self.steady_variants = self.seed_catalog(0, self.args.skus)
        self.seed_stock(1000)
        # Channels after the catalog: each is then owed everything once (the engine's path for a
        # new channel), so every store holds every SKU before the measurement starts.
        for n in range(CHANNELS):
            store = f"bench-{self.run_id}-{n}"
            self.sandbox.configure(store, SECRET)
            channel = Channel(name=f"bench-{n}", kind="webhook", base_url=self.sandbox.store_url(store))
            channel.credentials = {"secret": SECRET}
            channel.save()
            self.channel_ids.append(channel.pk)
            self.stores[channel.pk] = store
        for channel in Channel.objects.filter(pk__in=self.channel_ids):
            channel_owe_all(channel=channel)
        self.wait_drained("the initial catalog")
        self.verify(strict=True)
        time.sleep(1.0)  # let the hot-coalescing window of the seed deliveries pass
        log(f"seeded {len(self.steady_variants)} SKUs with stock, {CHANNELS} channels in sync "
            f"({time.monotonic() - began:.1f} s)")

    def wait_drained(self, what: str) -> float:
        from channels.models import SyncMark

        began = time.monotonic()
        deadline = began + self.args.drain_timeout
        pending = SyncMark.objects.pending().filter(channel_id__in=self.channel_ids)
        while pending.exists():
            if time.monotonic() > deadline:
                failed = pending.filter(failed_at__isnull=False).count()
                sample = list(pending.values_list("last_error", flat=True).exclude(last_error="")[:3])
                raise BenchError(
                    f"{what} did not drain in {self.args.drain_timeout:.0f} s: {pending.count()} marks pending "
                    f"({failed} given up; errors: {sample}); worker log:\n{self.stack.children['worker'].log_tail(20)}"
                )
            time.sleep(0.05)
        return time.monotonic() - began

    def verify(self, *, strict: bool, timeout: float = 15.0) -> str:
        """Every store's price and availability of every steady-state SKU equal the DB's."""
        from django.db.models import Sum

        from inventory.models import StockLevel, Variant

        ids = [pk for pk, _ in self.steady_variants]
        deadline = time.monotonic() + timeout
        while True:
            prices = dict(Variant.objects.filter(pk__in=ids).values_list("sku", "price"))
            stock = {
                row["variant__sku"]: max(0, (row["on_hand"] or 0) - (row["reserved"] or 0))
                for row in StockLevel.objects.filter(variant_id__in=ids)
                .values("variant__sku").annotate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
            }
            wrong: list[str] = []
            for channel_id, store in self.stores.items():
                items = self.sandbox.items(store)
                for sku, price in prices.items():
                    item = items.get(sku)
                    if item is None or item.get("price") is None or Decimal(str(item["price"])) != price:
                        wrong.append(f"{store}/{sku} price {item and item.get('price')} != {price}")
                    elif item.get("available") != stock.get(sku, 0):
                        wrong.append(f"{store}/{sku} available {item.get('available')} != {stock.get(sku, 0)}")
            checked = len(prices) * len(self.stores)
            if not wrong:
                return f"all {len(prices)} SKUs × {len(self.stores)} stores equal the DB (price and available)"
            if not strict:
                return f"{len(wrong)} of {checked} store items differ from the DB (e.g. {wrong[0]})"
            if time.monotonic() > deadline:
                raise BenchError(
                    f"stores did not converge to the DB: {len(wrong)} of {checked} differ, e.g. {wrong[:5]}"
                )
            time.sleep(0.5)

    # -- measurements --------------------------------------------------------------------------

    def store_requests(self, began: float, ended: float) -> tuple[int, list[dict], bool]:
        """POSTs the stores received in [began, ended]; whether the request log covered it all."""
        entries, complete = [], True
        for store in self.stores.values():
            log_entries = self.sandbox.requests(store)
            if len(log_entries) >= 10_000 and log_entries[0]["ts"] > began:
                complete = False  # the store's log (last 10,000) dropped part of the window
            entries += [e for e in log_entries if e["method"] == "POST" and began <= e["ts"] <= ended]
        return len(entries), entries, complete

    def log_offsets(self) -> dict[str, int]:
        return {name: child.log_path.stat().st_size for name, child in self.stack.children.items()}

    def task_runtimes(self, name: str, task: str, since: dict[str, int]) -> Summary:
        """Task run times (ms) from the worker's own log lines ("... succeeded in 0.012s")."""
        child = self.stack.children[name]
        with open(child.log_path, "rb") as handle:
            handle.seek(since.get(name, 0))
            text = handle.read().decode(errors="replace")
        pattern = re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded in ([0-9.e-]+)s")
        return Summary.of(float(m.group(1)) * 1000 for m in pattern.finditer(text))

    def flush_probes(self, began: float, ended: float) -> list[dict]:
        """The sync worker's flush timings (benchmarks/probes.py) of flushes started in the window."""
        from channels.redis_client import get_redis

        records = [json.loads(raw) for raw in get_redis().lrange(self.probe_key, 0, -1)]
        return [r for r in records if began <= r["started"] <= ended]

    @staticmethod
    def max_overlap(probes: list[dict]) -> int:
        """The most flushes of one channel running at the same time."""
        best = 0
        by_channel: dict[int, list[tuple[float, int]]] = {}
        for p in probes:
            events = by_channel.setdefault(p["channel"], [])
            events += [(p["started"], 1), (p["started"] + p["run_ms"] / 1000, -1)]
        for events in by_channel.values():
            running = 0
            for _, step in sorted(events, key=lambda e: (e[0], e[1])):
                running += step
                best = max(best, running)
        return best

    def coalesced(self) -> SteadyResult:
        from channels.models import Channel, SyncAttempt

        args = self.args
        Channel.objects.filter(pk__in=self.channel_ids).update(enabled=True)
        ops = plan(variants=self.steady_variants, rate=args.rate, duration=args.duration, seed=args.seed, run_no=0)
        meter = CpuMeter(self.stack)
        cpu_before, cpu_began, db_before = meter.snapshot(), time.monotonic(), db_activity()
        log(f"steady state, coalesced: {len(ops)} changes at {args.rate:g}/s for {args.duration:g} s ...")
        result = drive(ops, rate=args.rate, threads=args.threads, run_tag=f"coalesced-{self.run_id}")
        drain = self.wait_drained("the coalesced run")
        ended = time.time()
        cpu = CpuMeter.share(cpu_before, meter.snapshot(), time.monotonic() - cpu_began)
        db = db_activity_text(db_before, db_activity(), time.monotonic() - cpu_began, len(ops))
        began_dt = datetime.fromtimestamp(result.started_at - 0.05, tz=dt_timezone.utc)
        attempts = SyncAttempt.objects.filter(channel_id__in=self.channel_ids, committed_at__gte=began_dt)
        rows = list(
            attempts.filter(status=SyncAttempt.Status.SUCCESS).values_list(
                "latency_ms", "committed_at", "enqueued_at", "started_at", "acknowledged_at", "channel_id"
            )
        )
        statuses = Counter(attempts.values_list("status", flat=True))
        requests, entries, complete = self.store_requests(result.started_at - 0.05, ended)

        def hop(i: int, j: int) -> list[float]:
            return [(r[j] - r[i]).total_seconds() * 1000 for r in rows if r[i] is not None and r[j] is not None]

        probes = self.flush_probes(result.started_at, ended)
        immediate = [p for p in probes if not p["delayed"] and p["enqueued"]]
        hops = {
            "commit → flush enqueued (wake-up sent; a delivery by a flush already queued or running counts 0)":
                Summary.of(hop(1, 2)),
            "flush enqueued → flush task started (broker, waiting for a free worker process)":
                Summary.of((p["started"] - p["enqueued"]) * 1000 for p in immediate),
            "flush enqueued → batch started (the above + task set-up, claim; or waiting for the running "
            "flush's previous batch)": Summary.of(hop(2, 3)),
            "batch started → channel 2xx (read current state, build, sign, HTTP)": Summary.of(hop(3, 4)),
        }
        per_request = Counter((r[5], r[3]) for r in rows)  # (channel, batch start) = one HTTP call
        extra = [
            f"items per HTTP request: mean {statistics.fmean(per_request.values()):.2f}, "
            f"max {max(per_request.values())}"
            if per_request else "no requests",
            f"{len(probes):,} flush tasks ran ({len(probes) - len(immediate)} delayed re-queues), "
            f"at most {self.max_overlap(probes)} at once for one channel",
        ]
        verified = self.verify(strict=True)
        return SteadyResult(
            latency=Summary.of(r[0] for r in rows),
            requests=requests if complete else -requests,
            items=len(rows),
            attempts=sum(statuses.values()),
            failures=sum(n for s, n in statuses.items() if s != SyncAttempt.Status.SUCCESS),
            drive=result,
            drain_s=drain,
            hops=hops,
            verified=verified,
            server_ms=Summary.of(e["duration_ms"] for e in entries),
            task_ms=Summary.of(p["run_ms"] for p in probes),
            extra=extra,
            cpu=cpu,
            db=db,
        )

    def naive(self) -> SteadyResult:
        from django.db import transaction

        from benchmarks.naive import QUEUE, naive_push
        from channels.models import Channel, SyncMark
        from channels.redis_client import get_redis
        from inventory.signals import changes_recorded

        args = self.args
        # The engine must not deliver: its channels are disabled (they still get marks in the
        # writing transaction, as in the coalesced run, so the commit path costs the same).
        Channel.objects.filter(pk__in=self.channel_ids).update(enabled=False)
        channel_ids = list(self.channel_ids)
        key = f"bench:naive:{self.run_id}"
        redis = get_redis()
        redis.delete(key)
        sent = []  # list.append is atomic: one entry per task sent

        def on_changes(sender, changes, **kwargs):
            rows = [(c.pk, c.variant_id, c.aspect, c.created_at.timestamp()) for c in changes]

            def send():
                for change_id, variant_id, aspect, committed in rows:
                    for channel_id in channel_ids:
                        naive_push.apply_async(
                            args=(channel_id, change_id, variant_id, aspect, committed, time.time(), key), queue=QUEUE
                        )
                        sent.append(1)

            transaction.on_commit(send)

        ops = plan(variants=self.steady_variants, rate=args.rate, duration=args.duration, seed=args.seed, run_no=1)
        offsets = self.log_offsets()
        meter = CpuMeter(self.stack)
        cpu_before, cpu_began, db_before = meter.snapshot(), time.monotonic(), db_activity()
        log(f"steady state, naive: the same {len(ops)} changes at {args.rate:g}/s, one task per change per channel ...")
        changes_recorded.connect(on_changes, dispatch_uid="bench.naive")
        try:
            result = drive(ops, rate=args.rate, threads=args.threads, run_tag=f"naive-{self.run_id}")
        finally:
            changes_recorded.disconnect(dispatch_uid="bench.naive")
        began = time.monotonic()
        deadline = began + args.drain_timeout
        while redis.llen(key) < len(sent):
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the naive run did not finish in {args.drain_timeout:.0f} s: "
                    f"{redis.llen(key)} of {len(sent)} tasks "
                    f"done; naive worker log:\n{self.stack.children['naive-worker'].log_tail(20)}"
                )
            time.sleep(0.05)
        drain = time.monotonic() - began
        ended = time.time()
        cpu = CpuMeter.share(cpu_before, meter.snapshot(), time.monotonic() - cpu_began)
        db = db_activity_text(db_before, db_activity(), time.monotonic() - cpu_began, len(ops))
        records = [json.loads(raw) for raw in redis.lrange(key, 0, -1)]
        redis.delete(key)
        ok = [r for r in records if r["acknowledged"] is not None]
        requests, entries, complete = self.store_requests(result.started_at - 0.05, ended)
        hops = {
            "commit → task enqueued": Summary.of((r["enqueued"] - r["committed"]) * 1000 for r in ok),
            "enqueued → task started": Summary.of((r["started"] - r["enqueued"]) * 1000 for r in ok),
            "task started → channel 2xx (read state, HTTP)":
                Summary.of((r["acknowledged"] - r["started"]) * 1000 for r in ok),
        }
        statuses = Counter(r["status"] for r in records)
        verified = self.verify(strict=False, timeout=0)
        # The disabled channels' marks piled up meanwhile; they are not part of what follows.
        SyncMark.objects.filter(channel_id__in=self.channel_ids).delete()
        return SteadyResult(
            latency=Summary.of((r["acknowledged"] - r["committed"]) * 1000 for r in ok),
            requests=requests if complete else -requests,
            items=len(ok),
            attempts=len(records),
            failures=len(records) - len(ok),
            drive=result,
            drain_s=drain,
            hops=hops,
            verified=verified,
            server_ms=Summary.of(e["duration_ms"] for e in entries),
            task_ms=self.task_runtimes("naive-worker", "bench.naive_push", offsets),
            extra=[f"HTTP statuses: {dict(statuses)}"],
            cpu=cpu,
            db=db,
        )

    def ingest(self) -> tuple[float, list[float], list[int], float]:
        """Median rows/s of the bulk price API over `--ingest-repeats` runs, each run's rows/s and
        marks count, and the rows/s of the service alone (no HTTP layer) for comparison."""
        from django.contrib.auth.models import Group, User
        from rest_framework.authtoken.models import Token
        from rest_framework.test import APIClient

        from channels.models import Channel, SyncMark
        from inventory import services

        args = self.args
        # The channels stay defined (so every row owes 3 marks) but are not flushed meanwhile:
        # the request is measured alone.
        Channel.objects.filter(pk__in=self.channel_ids).update(enabled=False)
        more = args.ingest_rows - len(self.steady_variants)
        extra = self.seed_catalog(len(self.steady_variants), more) if more else []
        skus = [sku for _, sku in self.steady_variants + extra][: args.ingest_rows]
        user = User.objects.create(username=f"bench-pim-{self.run_id}")
        user.groups.add(Group.objects.get_or_create(name="pim")[0])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        rates, marks = [], []
        log(f"ingest: {len(skus)} rows per POST /api/v1/prices/bulk/, {args.ingest_repeats} runs ...")
        for rep in range(args.ingest_repeats):
            SyncMark.objects.filter(channel_id__in=self.channel_ids).delete()
            body = json.dumps([{"sku": sku, "price": f"{5000 + rep}.{i % 100:02d}"} for i, sku in enumerate(skus)])
            began = time.perf_counter()
            response = client.post("/api/v1/prices/bulk/", data=body, content_type="application/json")
            elapsed = time.perf_counter() - began
            if response.status_code != 200 or response.json().get("applied") != len(skus):
                raise BenchError(f"bulk price request failed: {response.status_code} {response.content[:300]!r}")
            count = SyncMark.objects.pending().filter(channel_id__in=self.channel_ids).count()
            if count != len(skus) * CHANNELS:
                raise BenchError(f"bulk price request left {count} marks, expected {len(skus) * CHANNELS}")
            rates.append(len(skus) / elapsed)
            marks.append(count)
        # The same rows through the service alone: what the HTTP/DRF layer costs on top.
        SyncMark.objects.filter(channel_id__in=self.channel_ids).delete()
        rows = [services.PriceRow(sku=sku, price=Decimal(f"{6000}.{i % 100:02d}")) for i, sku in enumerate(skus)]
        began = time.perf_counter()
        services.prices_bulk_set(rows=rows, origin="bench")
        service_rate = len(skus) / (time.perf_counter() - began)
        SyncMark.objects.filter(channel_id__in=self.channel_ids).delete()
        return statistics.median(rates), rates, marks, service_rate

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> str:
        self.clean_redis()
        # The sync log benchmark needs no process: alone, it runs without the stack.
        if set(STACK_MEASUREMENTS) - set(self.args.skip):
            self.start()
            self.seed()
        coalesced = naive = None
        ingest = None
        if "coalesced" not in self.args.skip:
            coalesced = self.coalesced()
            log(f"coalesced: p50 {ms(coalesced.latency.p50)} ms, p99 {ms(coalesced.latency.p99)} ms, "
                f"{abs(coalesced.requests)} requests")
        if "naive" not in self.args.skip:
            time.sleep(1.0)
            naive = self.naive()
            log(f"naive: p50 {ms(naive.latency.p50)} ms, p99 {ms(naive.latency.p99)} ms, "
                f"{abs(naive.requests)} requests")
        if "ingest" not in self.args.skip:
            ingest = self.ingest()
            log(f"ingest: median {ingest[0]:,.0f} rows/s")
        shopify = ""
        if "shopify" not in self.args.skip:
            from benchmarks.shopify_burst import BurstError, measure

            try:
                shopify = measure(stack=self.stack, sandbox_url=self.sandbox.base_url,
                                  naive_changes=self.args.shopify_naive_changes, log=log).markdown()
            except BurstError as exc:
                raise BenchError(str(exc)) from exc
        inbound = ""
        if "inbound" not in self.args.skip:
            from benchmarks.inbound import InboundBenchError
            from benchmarks.inbound import measure as measure_inbound

            try:
                inbound = measure_inbound(sandbox_url=self.sandbox.base_url, web_url=self.stack.start_web(),
                                          log=log).markdown()
            except InboundBenchError as exc:
                raise BenchError(str(exc)) from exc
        synclog = ""
        if "synclog" not in self.args.skip:
            from benchmarks.synclog import SynclogBenchError
            from benchmarks.synclog import measure as measure_synclog

            try:
                synclog = measure_synclog(rows=self.args.synclog_rows, log=log).markdown()
            except SynclogBenchError as exc:
                raise BenchError(str(exc)) from exc
        parts = (shopify, inbound, synclog)
        return self.report(coalesced, naive, ingest) + "".join("\n" + part for part in parts if part)

    def report(self, coalesced: SteadyResult | None, naive: SteadyResult | None, ingest) -> str:
        import django
        from django.db import connection

        args = self.args
        steady = f"steady {args.rate:g}/s × {args.duration:g} s"
        rows: list[list[str]] = []

        def lat(s: Summary) -> list[str]:
            return [ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)]

        def requests_text(r: SteadyResult) -> str:
            text = f"{abs(r.requests):,} HTTP requests"
            return text + (" (lower bound: sandbox log full)" if r.requests < 0 else "")

        if coalesced:
            c = coalesced
            rows.append([
                steady, "coalesced (engine: marks + per-channel flush)", *lat(c.latency), requests_text(c),
                f"{c.drive.issued:,} changes → {c.items:,} SKU deliveries in {c.attempts:,} attempts "
                f"({c.failures} not ok); {'; '.join(c.extra)}; drained {c.drain_s:.1f} s after the last change; "
                f"stores: {c.verified}",
            ])
        if naive:
            n = naive
            rows.append([
                steady, "naive (1 task + 1 POST per change per channel)", *lat(n.latency), requests_text(n),
                f"{n.drive.issued:,} changes → {n.attempts:,} tasks, {n.items:,} acknowledged ({n.failures} failed); "
                f"drained {n.drain_s:.1f} s after the last change; stores: {n.verified}",
            ])
        if coalesced and naive:
            rows.append([
                steady, "ratio naive / coalesced", ratio(naive.latency.p50, coalesced.latency.p50), "",
                ratio(naive.latency.p99, coalesced.latency.p99), "",
                f"requests {ratio(abs(naive.requests), abs(coalesced.requests))}",
                "p50 and p99 latency ratios, and HTTP requests sent",
            ])
        if ingest:
            median, rates, marks, service_rate = ingest
            rows.append([
                f"ingest {args.ingest_rows:,} rows × {CHANNELS} channels", "bulk API (one transaction, set-based SQL)",
                "", "", "", "", f"{median:,.0f} rows/s (median of {len(rates)})",
                f"runs: {', '.join(f'{r:,.0f}' for r in rates)} rows/s (request time, {args.ingest_rows:,} rows each); "
                f"marks pending after each: {', '.join(f'{m:,}' for m in marks)}; "
                f"service call alone (no HTTP/DRF): {service_rate:,.0f} rows/s",
            ])
        table = markdown_table(
            ["measurement", "strategy", "p50 ms", "p95 ms", "p99 ms", "max ms", "throughput/requests", "notes"], rows
        )

        def verdict(ok: bool) -> str:
            return "met" if ok else "not met"

        targets = []
        if coalesced:
            targets.append(f"p50 ≤ {TARGET_P50_MS:g} ms: {verdict(coalesced.latency.p50 <= TARGET_P50_MS)} "
                           f"({ms(coalesced.latency.p50)} ms)")
            targets.append(f"p99 ≤ {TARGET_P99_MS:g} ms: {verdict(coalesced.latency.p99 <= TARGET_P99_MS)} "
                           f"({ms(coalesced.latency.p99)} ms)")
        if ingest:
            targets.append(f"ingest ≥ {TARGET_INGEST_ROWS_S:,.0f} rows/s: {verdict(ingest[0] >= TARGET_INGEST_ROWS_S)} "
                           f"({ingest[0]:,.0f} rows/s)")

        hop_rows = []
        for label, result in (("coalesced", coalesced), ("naive", naive)):
            if result is None:
                continue
            for name, s in result.hops.items():
                hop_rows.append([label, name, ms(s.p50), ms(s.p95), ms(s.p99)])
            hop_rows.append([label, "(total) commit → channel 2xx", ms(result.latency.p50), ms(result.latency.p95),
                             ms(result.latency.p99)])
            hop_rows.append([label, "(inside) sandbox handling one POST", ms(result.server_ms.p50, 2),
                             ms(result.server_ms.p95, 2), ms(result.server_ms.p99, 2)])
            task = "flush task run time (probe)" if label == "coalesced" else "naive task run time (worker log)"
            hop_rows.append([label, f"(inside) {task}", ms(result.task_ms.p50),
                             ms(result.task_ms.p95), ms(result.task_ms.p99)])
            hop_rows.append([label, "(issuer) service call incl. commit", ms(result.drive.call.p50),
                             ms(result.drive.call.p95), ms(result.drive.call.p99)])
            hop_rows.append([label, "(issuer) lateness against the open-loop schedule", ms(result.drive.lag.p50),
                             ms(result.drive.lag.p95), ms(result.drive.lag.p99)])
        hops = markdown_table(["strategy", "hop (p50 per hop; hops need not add up to the total's p50)",
                               "p50 ms", "p95 ms", "p99 ms"], hop_rows) if hop_rows else ""

        vendor = connection.vendor
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("SHOW server_version")
            else:
                cursor.execute("SELECT sqlite_version()")
            version = cursor.fetchone()[0]
        lines = [
            "# syncsvc benchmark",
            "",
            f"Machine: {machine()}; DB: {vendor} {version} ({self.db.name}); Redis: {redact(self.redis_url)}; "
            f"Python {sys.version.split()[0]}, Django {django.get_version()}; worker concurrency {WORKER_CONCURRENCY} "
            f"(sync) + {WORKER_CONCURRENCY} (naive); {len(self.steady_variants):,} SKUs, {CHANNELS} webhook channels, "
            f"{int(PRICE_SHARE * 100)}/{100 - int(PRICE_SHARE * 100)} price/stock changes, "
            f"{args.threads} issuing threads.",
            "",
            table,
            "",
            "Targets: " + ("; ".join(targets) if targets else "none measured") + ".",
        ]
        if hops:
            lines += ["", "## Latency by hop", "", hops]
        cpu_lines = []
        for label, result in (("coalesced", coalesced), ("naive", naive)):
            if result:
                cpu_lines.append(f"- {label}: CPU {result.cpu}")
                if result.db:
                    cpu_lines.append(f"- {label}: database {result.db}")
        if cpu_lines:
            lines += ["", "## Resources during each steady-state run (issuing + draining)", "", *cpu_lines]
        lines += [
            "",
            "Latency: coalesced = `SyncAttempt.latency_ms` (commit of the oldest change a delivery includes → the "
            "channel's 2xx), success rows of the window; naive = the Change's commit time → the task's 2xx. "
            "Requests = POSTs the sandbox stores logged in the window.",
        ]
        return "\n".join(lines) + "\n"


def _terminate(signum, frame):
    STOPPING.set()
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    source_url = os.environ.get("DATABASE_URL") or default_database_url()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    db = bench_database(source_url)
    log(f"DATABASE_URL {'(preset) ' if 'DATABASE_URL' in os.environ else '(default) '}{redact(source_url)} "
        f"-> bench database {db.describe()}")
    log(f"REDIS_URL {'(preset) ' if 'REDIS_URL' in os.environ else '(default) '}{redact(redis_url)}")
    create_database(db)
    os.environ["DATABASE_URL"] = db.url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "syncsvc.settings"
    bench = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        bench = Bench(args, db, redis_url)
        report = bench.run()
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, SystemExit):
        STOPPING.set()
        print("bench: interrupted; stopping the children and dropping the bench database", file=sys.stderr, flush=True)
        raise
    finally:
        if bench is not None:
            bench.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 (Django may not be set up)
            pass
        drop_database(db)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    print()
    print(report, flush=True)
    log(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
