#!/usr/bin/env python
"""Issue 3's burst: 10,000 price changes across 1,000 products (10 variants each) into a
Shopify Standard-plan sandbox store, measured against the floor its cost bucket sets.

    python benchmarks/shopify_burst.py [--naive-changes 1000 | --naive-all] [--skip-naive]
                                       [--order catalog|shuffled] [--drain-timeout 300]

Also run by `make bench` (benchmarks/run.py calls `measure` on its own process stack, after
its other measurements; `--skip shopify` leaves it out). Standalone it derives its database
from $DATABASE_URL as run.py does (`<name>_bench`, dropped and created, dropped at the end),
takes Redis from $REDIS_URL, and starts the sandbox, a sync worker (concurrency 4) and beat
through `syncsvc.processes.ProcessStack`.

1. Seed: 1,000 products x 10 variants in the DB (the PIM's `product_create`), and the same
   products in two Standard-plan stores of the Shopify sandbox, grouped as Shopify holds them
   (one product, ten variants). One store is the engine's channel, the other the naive
   strategy's, so the two buckets are independent.
2. Warm the listings before the clock starts: every SKU's variant, product, inventory item
   and location ids, as the store's control API shows them, recorded as the channel's
   listings (what a real shop has after its first sync). What resolving them through the
   API would cost is computed (the adapter's own lookup plan and cost calculator) and
   printed separately; it is not part of the drain.
3. Engine: commit 10,000 price changes (one per variant, in catalog order) in one call of the
   bulk price service the API uses (`prices_bulk_set`); drain = from that commit to the moment
   the store shows the last new price (the newest `updated_at` of the 10,000 items; polled,
   bounded by --drain-timeout). Calls and THROTTLED answers from the store's `stats`.
   `--order shuffled` commits the same changes in no particular order, as a PIM export might:
   the flush claims marks in commit order, so a batch then spans many products.
4. Floor: the cheapest valid call plan is one `productVariantsBulkUpdate` per product (10
   points actual; the requested cost, per the adapter's cost calculator, is charged up front
   and refunded to actual). floor = (points the plan spends + the last call's up-front surplus
   - the bucket, full at the start) / restore rate, with the bucket size and restore rate read
   from the store's own throttleStatus.
5. Naive: one call per change (one `productVariantsBulkUpdate` holding one variant), one
   Celery task per change (`bench.shopify_naive_push`, 4 worker processes), the same pooled
   HTTP session as the adapter (keep-alive), the same warm listings, and THROTTLED honoured
   like ShopifySharp does it: wait until the bucket holds the call's cost (from the answer's
   throttleStatus; 1 s when it says nothing) and send again, so no change is lost. A full
   run needs ~100,000 points (~1,000 s), so by default it runs the first 1,000 changes and
   extrapolates the drain of 10,000 from its steady throughput after the initial bucket is
   spent (from the first THROTTLED answer on); `--naive-all` runs all 10,000.
6. Nothing lost: every one of the 10,000 variants in the engine's store shows the DB's price,
   and every variant of the naive slice in the naive store; otherwise `BurstError` (exit 1).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests

from syncsvc.celery import app

PRODUCTS = 1_000
VARIANTS_PER_PRODUCT = 10
NAIVE_DEFAULT_CHANGES = 1_000
NAIVE_QUEUE = "bench-shopify"
NAIVE_TASK = "bench.shopify_naive_push"
NAIVE_CONCURRENCY = 4
SYNC_CONCURRENCY = 4
ACCESS_TOKEN = "shpat_burst_bench"
PLAN = "standard"
TARGET_FLOOR_RATIO = 1.15
TARGET_NAIVE_RATIO = 10.0
SEED_PRICE = Decimal("10.00")
SEED_THREADS = 4
POLL_S = 0.25  # how often the drain is checked: the drain's end is read from the store, not from the poll
THROTTLED_DEFAULT_WAIT_S = 1.0  # ShopifySharp's retry delay when the answer says nothing usable


class BurstError(RuntimeError):
    """The burst could not be measured: it did not drain, or a store lost a change."""


# --- the floor ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """The least time a call plan can take: its points beyond the initially full bucket, at the
    restore rate. The last call also needs its requested cost in hand (charged up front,
    refunded to actual after), hence the surplus term."""

    label: str
    calls: int  # mutations in the plan
    actual_each: int  # points one mutation spends
    requested_each: int  # points one mutation is charged up front
    bucket: float
    restore_rate: float

    @property
    def points(self) -> int:
        return self.calls * self.actual_each

    @property
    def seconds(self) -> float:
        surplus = self.requested_each - self.actual_each
        return max(0.0, self.points + surplus - self.bucket) / self.restore_rate

    def formula(self) -> str:
        surplus = self.requested_each - self.actual_each
        return (f"({self.calls:,} {self.label} × {self.actual_each} points + {surplus} point requested up front "
                f"by the last call ({self.requested_each} requested, {self.actual_each} spent) − {self.bucket:,.0f} "
                f"bucket full at the start) / {self.restore_rate:g} points/s = {self.seconds:,.2f} s")


def price_call_costs(variants: int) -> tuple[int, int]:
    """(requested, actual) points of one `productVariantsBulkUpdate` of `variants` variants, as
    the adapter's cost calculator charges it and as Shopify spends it (a mutation is 10)."""
    from channels.adapters.shopify.cost import MUTATION_COST, requested_cost
    from channels.adapters.shopify.documents import prices_update

    variables = {"product0": "gid://shopify/Product/1",
                 "variants0": [{"id": f"gid://shopify/ProductVariant/{n}", "price": "1.00"} for n in range(variants)]}
    return requested_cost(prices_update(1), variables), MUTATION_COST


def resolution_cost(skus: int) -> tuple[int, int]:
    """(queries, points requested) to resolve `skus` SKUs to their ids through the API, with
    the adapter's own lookup plan (`variants_by_sku`: `lookup_batch_size` SKUs per query)."""
    from channels.adapters.shopify.adapter import DEFAULT_LOOKUP_BATCH
    from channels.adapters.shopify.cost import requested_cost
    from channels.adapters.shopify.documents import VARIANTS_BY_SKU

    queries = math.ceil(skus / DEFAULT_LOOKUP_BATCH)
    each = requested_cost(VARIANTS_BY_SKU, {"first": DEFAULT_LOOKUP_BATCH + 1, "query": ""})
    return queries, queries * each


# --- the store's control API --------------------------------------------------------------------


class ShopifyStores:
    """The Shopify sandbox's control calls the burst needs (`/_sandbox/shopify/{store}/...`)."""

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False

    def store_url(self, store: str) -> str:
        return f"{self.sandbox_url}/shopify/{store}"

    def _path(self, store: str, resource: str) -> str:
        return f"{self.sandbox_url}/_sandbox/shopify/{store}/{resource}"

    def _call(self, method: str, url: str, session: requests.Session | None = None, **kwargs):
        response = (session or self.session).request(method, url, timeout=60, **kwargs)
        if response.status_code != 200:
            raise BurstError(f"sandbox {method} {url} -> {response.status_code}: {response.text[:300]}")
        return response.json()

    def configure(self, store: str) -> None:
        self._call("POST", self._path(store, "config"), json={"access_token": ACCESS_TOKEN, "plan": PLAN})

    def seed(self, store: str, products: list[tuple[str, str, list[str]]]) -> None:
        """Each (handle, title, SKUs) as one product with those variants, at the seed price."""
        local = threading.local()

        def put(product: tuple[str, str, list[str]]) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
                session.trust_env = False
            handle, title, skus = product
            for sku in skus:
                self._call("PUT", self._path(store, f"items/{sku}"), session,
                           json={"price": str(SEED_PRICE), "available": 0, "title": title, "product": handle})

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(put, products))

    def items(self, store: str) -> dict[str, dict]:
        return {item["sku"]: item for item in self._call("GET", self._path(store, "items"))["items"]}

    def stats(self, store: str) -> dict:
        return self._call("GET", self._path(store, "stats"))

    def requests_since(self, store: str, since: float) -> list[dict]:
        return self._call("GET", self._path(store, "requests"), params={"since": f"{since:.6f}"})["requests"]


# --- the naive strategy's task --------------------------------------------------------------


@app.task(name=NAIVE_TASK, queue=NAIVE_QUEUE, ignore_result=True, acks_late=True)
def shopify_naive_push(channel_id: int, variant_id: int, change_id: int, run_key: str, give_up_at: float) -> None:
    """One price change, one call: the variant's current price in a `productVariantsBulkUpdate`
    of its own, resent after each THROTTLED answer once the bucket should hold its cost."""
    from django.conf import settings

    from channels.adapters.http import session_for
    from channels.adapters.shopify.client import DEFAULT_API_VERSION
    from channels.adapters.shopify.documents import prices_update
    from channels.models import Channel, Listing
    from channels.redis_client import get_redis
    from inventory.selectors import variants_snapshot

    started_at = time.time()
    channel = Channel.objects.get(pk=channel_id)
    ids = Listing.objects.get(channel_id=channel_id, variant_id=variant_id).external_ids
    snapshot = variants_snapshot(variant_ids=[variant_id])[variant_id]
    version = channel.settings.get("api_version") or DEFAULT_API_VERSION
    url = f"{channel.base_url.rstrip('/')}/admin/api/{version}/graphql.json"
    body = json.dumps({
        "query": prices_update(1),
        "variables": {"product0": ids["product_id"],
                      "variants0": [{"id": ids["variant_id"], "price": str(snapshot.price)}]},
    }, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "X-Shopify-Access-Token": channel.credentials.get("access_token", "")}
    record = {"variant": variant_id, "change": change_id, "started": started_at, "calls": 0, "throttled": 0,
              "first_throttled": None, "acknowledged": None, "error": ""}
    while True:
        record["calls"] += 1
        wait = THROTTLED_DEFAULT_WAIT_S
        try:
            response = session_for(channel_id).post(url, data=body, headers=headers,
                                                    timeout=settings.SYNCSVC["HTTP_TIMEOUT_S"])
            payload = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError) as exc:
            payload, record["error"] = {}, f"{exc.__class__.__name__}: {exc}"[:200]
        codes = [str((e.get("extensions") or {}).get("code")) for e in payload.get("errors") or ()]
        if payload and "THROTTLED" not in codes:
            user_errors = ((payload.get("data") or {}).get("p0") or {}).get("userErrors")
            if payload.get("data") and not codes and not user_errors:
                record["acknowledged"], record["error"] = time.time(), ""
            else:
                record["error"] = json.dumps(payload.get("errors") or user_errors)[:200]
            break
        if "THROTTLED" in codes:
            record["throttled"] += 1
            record["first_throttled"] = record["first_throttled"] or time.time()
            cost = (payload.get("extensions") or {}).get("cost") or {}
            status = cost.get("throttleStatus") or {}
            if status.get("restoreRate"):
                short = float(cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
                wait = max(short, 1.0) / float(status["restoreRate"])
        if time.time() + wait > give_up_at:
            record["error"] = record["error"] or "gave up: still throttled at the deadline"
            break
        time.sleep(wait)  # the naive way: the worker process waits out the bucket
    get_redis().rpush(run_key, json.dumps(record))


# --- the measurement ----------------------------------------------------------------------------


@dataclass
class EngineResult:
    changes: int
    order: str  # of the changes in the commit: catalog | shuffled
    commit_s: float  # the bulk service call, commit included
    drain_s: float  # commit -> the store shows the last new price
    first_call_s: float  # commit -> the first price call reached the store
    calls: int
    throttled: int
    points_spent: int
    price_calls: int
    mutations: int
    deferred_items: int  # items our own limiter held back (THROTTLED attempts, not sent)
    flush_batches: int  # pushes the flush made (delivered or held back)
    worker_cpu_s: float  # CPU seconds of the sync worker (all its processes) during the drain
    floor: Floor
    verified: str

    @property
    def ratio(self) -> float:
        return self.drain_s / self.floor.seconds if self.floor.seconds else math.nan


@dataclass
class NaiveResult:
    changes: int
    drain_s: float
    calls: int
    throttled: int
    tasks: int
    failed: int
    steady_rate: float  # changes/s after the initial bucket was spent
    bucket_phase_s: float  # commit -> the first THROTTLED answer
    bucket_phase_changes: int  # changes acknowledged before it
    extrapolated_s: float  # the drain of `target` changes
    target: int
    measured_all: bool
    floor: Floor
    verified: str


@dataclass
class BurstResult:
    engine: EngineResult
    naive: NaiveResult | None
    resolution: tuple[int, int]  # (queries, points) the warm-up saved
    restore_rate: float
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The burst's section of the bench report: a table, the floor's formula, the verdicts."""
        from benchmarks.support import markdown_table

        e, n = self.engine, self.naive

        def verdict(ok: bool) -> str:
            return "**met**" if ok else "**not met**"

        def pct(part: int, whole: int) -> str:
            return f"{100 * part / whole:.1f}%" if whole else "n/a"

        rows = [
            ["drain: commit → the store shows all new prices", f"{e.drain_s:,.1f} s",
             f"{e.changes:,} changes in one `prices_bulk_set` commit ({e.order} order, {e.commit_s:.2f} s); "
             f"first price call {e.first_call_s:.2f} s after the commit"],
            ["floor (cheapest valid call plan)", f"{e.floor.seconds:,.2f} s", e.floor.formula()],
            ["drain / floor", f"{e.ratio:.3f}×",
             f"target ≤ {TARGET_FLOOR_RATIO:g}×: {verdict(e.ratio <= TARGET_FLOOR_RATIO)}"],
            ["calls to the store", f"{e.calls:,}",
             f"{e.price_calls:,} price documents carrying {e.mutations:,} `productVariantsBulkUpdate` "
             f"(one per product); {e.points_spent:,} points spent"],
            ["throttled answers (store)", f"{e.throttled:,} ({pct(e.throttled, e.calls)} of calls)",
             f"our limiter held {e.deferred_items:,} items back before sending (in {e.flush_batches:,} pushes in all); "
             f"sync worker CPU {e.worker_cpu_s:.1f} s during the drain"],
            ["nothing lost", "yes", e.verified],
        ]
        if n is not None:
            speedup = n.extrapolated_s / e.drain_s if e.drain_s else math.nan
            how = ("measured on all of them" if n.measured_all else
                   f"extrapolated: {n.bucket_phase_s:.1f} s until the first THROTTLED answer "
                   f"({n.bucket_phase_changes:,} changes from the initial bucket), then the remaining "
                   f"{n.target - n.bucket_phase_changes:,} at the "
                   f"measured steady {n.steady_rate:.2f} changes/s")
            rows += [
                [f"naive, measured ({n.changes:,} changes, one call each)", f"{n.drain_s:,.1f} s",
                 f"{n.calls:,} calls, {n.throttled:,} throttled ({pct(n.throttled, n.calls)}); {n.tasks:,} tasks, "
                 f"{n.failed} failed; steady {n.steady_rate:.2f} changes/s after the bucket; {n.verified}"],
                [f"naive, {n.target:,} changes", f"{n.extrapolated_s:,.0f} s",
                 f"{how}; its own floor {n.floor.seconds:,.0f} s = {n.floor.formula()}"],
                ["naive / syncsvc (drain of 10,000)", f"{speedup:.1f}×",
                 f"target ≥ {TARGET_NAIVE_RATIO:g}×: {verdict(speedup >= TARGET_NAIVE_RATIO)}"],
            ]
        queries, points = self.resolution
        lines = [
            "## Shopify burst: 10,000 price changes, 1,000 products × 10 variants, Standard plan",
            "",
            markdown_table(["measurement", "result", "notes"], rows),
            "",
            f"Listings were warmed before the clock started (each SKU's variant, product and inventory item ids, as a "
            f"shop has them after its first sync). Resolving them through the API instead would take {queries:,} "
            f"lookup queries ({points:,} points requested, ≈ {points / self.restore_rate:,.0f} s of restore at "
            f"{self.restore_rate:g} points/s), once per shop; not included above.",
        ]
        lines += [f"{note}" for note in self.notes]
        return "\n".join(lines) + "\n"


class CommitClock:
    """The instant the changes' transaction commits: the first after-commit callback of ours
    notes it, before any other work of ours runs there (the naive's task sends would otherwise
    count as time before the commit)."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.uid = f"bench.shopify_commit_clock.{id(self)}"

    def __enter__(self) -> CommitClock:
        from django.db import transaction

        from inventory.signals import changes_recorded

        def on_changes(sender, changes, **kwargs):
            transaction.on_commit(lambda: setattr(self, "at", self.at or time.time()))

        changes_recorded.connect(on_changes, dispatch_uid=self.uid, weak=False)
        return self

    def __exit__(self, *exc_info) -> None:
        from inventory.signals import changes_recorded

        changes_recorded.disconnect(dispatch_uid=self.uid)


class Burst:
    """One burst run on a running stack (sandbox, sync worker, beat) and the caller's database."""

    def __init__(self, *, stack, sandbox_url: str, naive_changes: int, drain_timeout: float,
                 log: Callable[[str], None], order: str = "catalog") -> None:
        self.stack = stack
        self.order = order
        self.stores = ShopifyStores(sandbox_url)
        self.naive_changes = naive_changes
        self.drain_timeout = drain_timeout
        self.log = log
        self.run_id = uuid.uuid4().hex[:8]
        self.engine_store = f"burst-{self.run_id}"
        self.naive_store = f"burst-naive-{self.run_id}"
        self.variants: list[tuple[int, str, int]] = []  # (variant id, SKU, product number), catalog order
        self.paused: list[int] = []

    # -- set-up --------------------------------------------------------------------------------

    def seed(self) -> None:
        from channels.models import Channel
        from inventory import services
        from inventory.models import Variant

        began = time.monotonic()
        # Other channels (run.py's webhook channels) must not compete for the CPU: paused, and
        # the marks our changes owe them are dropped afterwards.
        self.paused = list(Channel.objects.filter(enabled=True).values_list("pk", flat=True))
        Channel.objects.filter(pk__in=self.paused).update(enabled=False)
        products = []
        for p in range(PRODUCTS):
            handle, title = f"burst-{self.run_id}-{p:04d}", f"Burst product {p}"
            skus = [f"BURST-{self.run_id}-{p:04d}-{v:02d}" for v in range(VARIANTS_PER_PRODUCT)]
            services.product_create(handle=handle, title=title, origin="seed",
                                    variants=[{"sku": sku, "price": SEED_PRICE} for sku in skus])
            products.append((handle, title, skus))
        by_sku = dict(Variant.objects.filter(sku__startswith=f"BURST-{self.run_id}-").values_list("sku", "pk"))
        self.variants = [(by_sku[sku], sku, p) for p, (_, _, skus) in enumerate(products) for sku in skus]
        self.log(f"shopify: {PRODUCTS:,} products × {VARIANTS_PER_PRODUCT} variants in the DB "
                 f"({time.monotonic() - began:.1f} s); seeding two sandbox stores ...")
        for store in (self.engine_store, self.naive_store):
            self.stores.configure(store)
            self.stores.seed(store, products)
        self.log(f"shopify: stores {self.engine_store} and {self.naive_store} seeded "
                 f"({time.monotonic() - began:.1f} s)")

    def channel(self, store: str, *, enabled: bool):
        """A Shopify channel on `store` with its listings warmed from the store's own ids."""
        from django.utils import timezone

        from channels.models import Channel, Listing

        channel = Channel(name=f"shopify-{store}", kind="shopify", base_url=self.stores.store_url(store),
                          settings={"plan": PLAN}, enabled=enabled)
        channel.credentials = {"access_token": ACCESS_TOKEN}
        channel.save()
        shown = self.stores.items(store)
        now = timezone.now()
        listings = []
        for variant_id, sku, _ in self.variants:
            item = shown[sku]
            ids = {"variant_id": item["variant_id"], "product_id": item["product_id"],
                   "inventory_item_id": item["inventory_item_id"]}
            if item.get("levels"):
                ids["location_id"] = item["levels"][0]["location_id"]
            listings.append(Listing(channel=channel, variant_id=variant_id, status=Listing.Status.LISTED,
                                    external_ids=ids, last_synced_at=now))
        Listing.objects.bulk_create(listings, batch_size=2000)
        return channel

    def worker_cpu(self) -> float:
        """CPU seconds the sync worker and its pool processes have used so far."""
        import psutil

        def used(process) -> float:
            times = process.cpu_times()
            return times.user + times.system

        try:
            root = psutil.Process(self.stack.children["worker"].pid)
            return used(root) + sum(used(child) for child in root.children(recursive=True))
        except psutil.Error:
            return math.nan

    def bucket(self, store: str) -> tuple[float, float, float]:
        """(size, available, restore rate) of the store's bucket, from its throttleStatus."""
        status = self.stores.stats(store)["throttle_status"]
        return float(status["maximumAvailable"]), float(status["currentlyAvailable"]), float(status["restoreRate"])

    # -- the engine ----------------------------------------------------------------------------

    def engine(self) -> EngineResult:
        from channels.models import SyncAttempt, SyncMark
        from inventory import services

        channel = self.channel(self.engine_store, enabled=True)
        size, available, rate = self.bucket(self.engine_store)
        if available < size:
            raise BurstError(f"the engine's store bucket is not full before the run ({available} of {size})")
        requested, actual = price_call_costs(VARIANTS_PER_PRODUCT)
        floor = Floor("products", PRODUCTS, actual, requested, size, rate)
        self.log(f"shopify: floor = {floor.formula()}")
        before = self.stores.stats(self.engine_store)
        expected = {sku: Decimal(20 + index % 7000) + Decimal(index % 100) / 100
                    for index, (_, sku, _) in enumerate(self.variants)}
        rows = [services.PriceRow(sku=sku, price=expected[sku]) for _, sku, _ in self.variants]
        if self.order == "shuffled":  # as a PIM export in no particular order would send them
            random.Random(PRODUCTS).shuffle(rows)
        self.log(f"shopify: committing {len(rows):,} price changes in {self.order} order "
                 "(the clock starts at the commit) ...")
        cpu_before = self.worker_cpu()
        called = time.time()
        with CommitClock() as clock:
            result = services.prices_bulk_set(rows=rows, origin="bench")
        committed = clock.at or time.time()
        if result.changed != len(rows):
            raise BurstError(f"the bulk price service changed {result.changed} of {len(rows)} prices")
        pending = SyncMark.objects.pending().filter(channel=channel)
        shown, last_shown = self._wait_shown(self.engine_store, expected, self.timeout(floor),
                                             engine_done=lambda: not pending.exists())
        worker_cpu = self.worker_cpu() - cpu_before
        after = self.stores.stats(self.engine_store)
        entries = self.stores.requests_since(self.engine_store, committed - 1.0)
        price_entries = [e for e in entries if "productVariantsBulkUpdate" in (e.get("operations") or [])]
        ok_entries = [e for e in price_entries if not e.get("throttled") and e.get("status") == 200]
        failed = SyncMark.objects.filter(channel=channel, failed_at__isnull=False).count()
        if failed:
            raise BurstError(f"{failed} marks of the engine's channel gave up")
        attempts = SyncAttempt.objects.filter(channel=channel)
        deferred = attempts.filter(status=SyncAttempt.Status.THROTTLED).count()
        batches = attempts.values("started_at").distinct().count()  # one start time per push
        return EngineResult(
            changes=len(rows), order=self.order, commit_s=committed - called, drain_s=last_shown - committed,
            first_call_s=(min(e["ts"] for e in ok_entries) - committed) if ok_entries else math.nan,
            calls=after["calls"] - before["calls"], throttled=after["throttled"] - before["throttled"],
            points_spent=after["points_spent"] - before["points_spent"], price_calls=len(ok_entries),
            mutations=sum(e["operations"].count("productVariantsBulkUpdate") for e in ok_entries),
            deferred_items=deferred, flush_batches=batches, worker_cpu_s=worker_cpu, floor=floor,
            verified=f"all {len(shown):,} variants in the store show the DB's price",
        )

    def timeout(self, floor: Floor, share: float = 1.0) -> float:
        """How long a drain may take: --drain-timeout, or three times its floor if longer."""
        return max(self.drain_timeout, 3 * floor.seconds * share)

    def _wait_shown(self, store: str, expected: dict[str, Decimal], timeout: float,
                    engine_done: Callable[[], bool]) -> tuple[dict[str, dict], float]:
        """Poll until the store shows every expected price (checked in the store once the
        senders say they are done); the store items and when it showed the last of them."""
        deadline = time.monotonic() + timeout
        wrong: list[str] = []
        while True:
            if engine_done():
                shown = self.stores.items(store)
                wrong = [sku for sku, price in expected.items()
                         if sku not in shown or Decimal(str(shown[sku]["price"])) != price]
                if not wrong:
                    last = max(datetime.fromisoformat(shown[sku]["updated_at"]).timestamp() for sku in expected)
                    return shown, last
            if time.monotonic() > deadline:
                sample = [(sku, (self.stores.items(store).get(sku) or {}).get("price"), str(expected[sku]))
                          for sku in wrong[:3]]
                raise BurstError(f"{store} did not show every new price within {timeout:.0f} s "
                                 f"({len(wrong) if wrong else 'unknown number'} wrong, e.g. {sample}); worker log:\n"
                                 f"{self.stack.children['worker'].log_tail(15)}")
            time.sleep(POLL_S)

    # -- the naive strategy --------------------------------------------------------------------

    def start_naive_worker(self):
        from syncsvc.processes import wait_for

        name = "shopify-naive-worker"
        child = self.stack.spawn(name, [
            sys.executable, "-m", "celery", "-A", "syncsvc", "worker", "-Q", NAIVE_QUEUE, "-c", str(NAIVE_CONCURRENCY),
            "--include", "benchmarks.shopify_burst", "--pool", "prefork", "-l", "info",
            "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
        ])
        wait_for(lambda: b"ready." in child.log_path.read_bytes() or not child.alive(), timeout=60,
                 message=f"{name} did not start:\n{child.log_tail()}")
        if not child.alive():
            raise BurstError(f"{name} died:\n{child.log_tail()}")
        return name, child

    def naive(self, engine_channel_id: int) -> NaiveResult:
        from django.db import transaction

        from channels.models import Channel
        from channels.redis_client import get_redis
        from inventory import services
        from inventory.signals import changes_recorded

        # The engine must not deliver these: its channel is paused for the naive run.
        Channel.objects.filter(pk=engine_channel_id).update(enabled=False)
        channel = self.channel(self.naive_store, enabled=False)  # holds the naive's URL, token and listings
        size, available, rate = self.bucket(self.naive_store)
        if available < size:
            raise BurstError(f"the naive store's bucket is not full before the run ({available} of {size})")
        requested, actual = price_call_costs(1)
        target = len(self.variants)
        floor = Floor("changes", target, actual, requested, size, rate)
        slice_ = self.variants[: self.naive_changes]
        expected = {sku: Decimal(8000 + index % 1000) + Decimal(index % 100) / 100
                    for index, (_, sku, _) in enumerate(slice_)}
        name, child = self.start_naive_worker()
        key = f"bench:shopify-naive:{self.run_id}"
        redis = get_redis()
        redis.delete(key)
        sent: list[int] = []
        timeout = self.timeout(floor, share=len(slice_) / target)
        give_up_at = time.time() + timeout

        def on_changes(sender, changes, **kwargs):
            rows = [(c.pk, c.variant_id) for c in changes]

            def send():
                for change_id, variant_id in rows:
                    shopify_naive_push.apply_async(args=(channel.pk, variant_id, change_id, key, give_up_at),
                                                   queue=NAIVE_QUEUE)
                    sent.append(1)

            transaction.on_commit(send)

        try:
            before = self.stores.stats(self.naive_store)
            rows = [services.PriceRow(sku=sku, price=price) for sku, price in expected.items()]
            scope = "all of them" if len(rows) >= target else f"then extrapolated to {target:,}"
            self.log(f"shopify: naive, {len(rows):,} changes, one call each ({scope}) ...")
            with CommitClock() as clock:  # connected first: its callback runs before the sends
                changes_recorded.connect(on_changes, dispatch_uid="bench.shopify_naive")
                try:
                    services.prices_bulk_set(rows=rows, origin="bench-naive")
                finally:
                    changes_recorded.disconnect(dispatch_uid="bench.shopify_naive")
            committed = clock.at or time.time()
            _, last_shown = self._wait_shown(self.naive_store, expected, timeout,
                                                 engine_done=lambda: redis.llen(key) >= len(sent))
            after = self.stores.stats(self.naive_store)
        finally:
            child.stop()
            self.stack.children.pop(name, None)
        records = [json.loads(raw) for raw in redis.lrange(key, 0, -1)]
        redis.delete(key)
        failed = [r for r in records if r["acknowledged"] is None]
        if failed:
            raise BurstError(f"the naive strategy lost {len(failed)} changes, e.g. {failed[0]['error']}")
        acknowledged = sorted(r["acknowledged"] for r in records)
        throttled_at = min((r["first_throttled"] for r in records if r["first_throttled"]), default=None)
        if throttled_at is None:  # never throttled: the bucket alone covered the slice
            steady, phase_s, phase_n = math.nan, acknowledged[-1] - committed, len(acknowledged)
        else:
            later = [t for t in acknowledged if t >= throttled_at]
            phase_s, phase_n = throttled_at - committed, len(acknowledged) - len(later)
            steady = (len(later) - 1) / (later[-1] - later[0]) if len(later) > 1 else math.nan
        if len(slice_) >= target:
            extrapolated = last_shown - committed
        else:
            extrapolated = phase_s + (target - phase_n) / steady if not math.isnan(steady) else math.nan
        return NaiveResult(
            changes=len(slice_), drain_s=last_shown - committed, calls=after["calls"] - before["calls"],
            throttled=after["throttled"] - before["throttled"], tasks=len(records), failed=len(failed),
            steady_rate=steady, bucket_phase_s=phase_s, bucket_phase_changes=phase_n, extrapolated_s=extrapolated,
            target=target, measured_all=len(slice_) >= target, floor=floor,
            verified=f"all {len(expected):,} variants of the slice show the DB's price",
        )

    # -- the whole run -------------------------------------------------------------------------

    def run(self, *, with_naive: bool = True) -> BurstResult:
        from channels.models import Channel, SyncMark

        try:
            self.seed()
            engine = self.engine()
            self.log(f"shopify: drained in {engine.drain_s:.1f} s = {engine.ratio:.3f}× the floor "
                     f"({engine.floor.seconds:.2f} s); {engine.calls} calls, {engine.throttled} throttled")
            channel_id = Channel.objects.get(name=f"shopify-{self.engine_store}").pk
            naive = self.naive(channel_id) if with_naive else None
            if naive:
                self.log(f"shopify: naive {naive.changes:,} changes in {naive.drain_s:.1f} s; "
                         f"{naive.target:,} ≈ {naive.extrapolated_s:,.0f} s")
            queries, points = resolution_cost(len(self.variants))
            return BurstResult(engine, naive, (queries, points), engine.floor.restore_rate)
        finally:
            # What our changes still owe the paused channels (and ours) is no part of what follows.
            SyncMark.objects.filter(variant_id__in=[pk for pk, _, _ in self.variants]).delete()
            Channel.objects.filter(name__startswith="shopify-burst-").filter(
                name__contains=self.run_id).update(enabled=False)
            Channel.objects.filter(pk__in=self.paused).update(enabled=True)


def measure(*, stack, sandbox_url: str, naive_changes: int = NAIVE_DEFAULT_CHANGES, drain_timeout: float = 300.0,
            with_naive: bool = True, order: str = "catalog", log: Callable[[str], None] = print) -> BurstResult:
    """Run the burst on a running stack (sandbox, sync worker and beat) and the Django database
    it serves; raises `BurstError` when something did not drain or was lost. `order`: the
    changes' order in the commit, `catalog` (product by product) or `shuffled`."""
    burst = Burst(stack=stack, sandbox_url=sandbox_url, naive_changes=naive_changes, drain_timeout=drain_timeout,
                  log=log, order=order)
    return burst.run(with_naive=with_naive)


# --- standalone -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-changes", type=int, default=NAIVE_DEFAULT_CHANGES,
                        help=f"changes the naive strategy runs, then extrapolated ({NAIVE_DEFAULT_CHANGES:,})")
    parser.add_argument("--naive-all", action="store_true", help="run the naive strategy on all 10,000 (~17 min)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--order", choices=["catalog", "shuffled"], default="catalog",
                        help="the changes' order in the commit: product by product (default), or shuffled")
    parser.add_argument("--drain-timeout", type=float, default=300.0,
                        help="seconds each drain may take at least (300; three times its floor if longer)")
    args = parser.parse_args(argv)
    if args.naive_all:
        args.naive_changes = PRODUCTS * VARIANTS_PER_PRODUCT
    return args


def main(argv: list[str] | None = None) -> int:
    from benchmarks.standalone import run_standalone

    args = parse_args(argv)

    def run(*, stack, sandbox_url, web_url, log):
        return measure(stack=stack, sandbox_url=sandbox_url, naive_changes=args.naive_changes,
                       drain_timeout=args.drain_timeout, with_naive=not args.skip_naive, order=args.order, log=log)

    return run_standalone("shopify", run, errors=BurstError, worker_concurrency=SYNC_CONCURRENCY)


if __name__ == "__main__":
    sys.exit(main())
