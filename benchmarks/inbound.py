#!/usr/bin/env python
"""Issue 4's benchmarks: inbound order webhooks per second, and a flash sale's oversells.

    python benchmarks/inbound.py [--orders 3000] [--stock 60] [--rate 20] [--buffers 0,2,sized]

Also run by `make bench` (benchmarks/run.py calls `measure` on its own process stack;
`--skip inbound` leaves it out). Standalone it derives its database from $DATABASE_URL as
run.py does (`<name>_bench`, dropped and created, dropped at the end), takes Redis from
$REDIS_URL, and starts the sandbox, gunicorn (the web process, 2 workers x 16 threads), a
worker (concurrency 4) and beat through `syncsvc.processes.ProcessStack`.

1. Inbound: `--orders` Shopify `orders/create` webhooks (one line each, over 200 SKUs), signed
   as Shopify signs them (base64 HMAC-SHA256 of the raw body), a tenth of them delivered a
   second time with the same `X-Shopify-Event-Id`, POSTed from 32 keep-alive client threads (a
   flash of orders from several channels arrives in parallel) to
   `/webhooks/{channel}/` as fast as it answers. Reported: answered/s (verified and stored,
   200) and applied/s (from the first POST to the moment the ledger holds every sale), and
   whether the count is exact (one sale movement per order, none for the duplicates). Beside
   it, in the same run, the same clients on `GET /health/` (a database and a Redis round trip
   through the same gunicorn): the HTTP floor of this machine, as a ratio.
2. Flash sale: three sandbox stores (Shopify, WooCommerce, Amazon) hold one SKU with `--stock`
   units, shown by syncsvc; customers buy one unit at a time at `--rate` sales/s in all,
   each on a random store, through the stores' `sales` control (each store refuses at its own
   zero and sends its real signed order webhook). The sale goes on until every store has
   refused for 2 s. Reported per buffer setting (the same on every channel): units sold,
   oversold (sold beyond the stock), held back unsold, and the buffer the channels showed at
   the end. `sized` is the latency-sized buffer: each channel's p99 inventory sync latency x
   the SKU's sell velocity on the other channels over the last 10 s.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests

from benchmarks.support import markdown_table

SECRET = "bench-inbound-secret"
INBOUND_SKUS = 200
CLIENT_THREADS = 32
DUPLICATE_SHARE = 0.1
TARGET_APPLIED_PER_S = 300.0
FLASH_KINDS = ("shopify", "woocommerce", "amazon")
FLASH_WINDOW_S = 10.0
# Each store at its real default limits (Shopify Standard plan, Amazon 5 patches/s): the
# latency they impose is what a buffer must cover.
STORE_CREDENTIALS = {
    "shopify": ({"access_token": "shpat_flash"}, {"access_token": "shpat_flash", "plan": "standard"}),
    "woocommerce": ({"consumer_key": "ck_flash", "consumer_secret": "cs_flash"},
                    {"consumer_key": "ck_flash", "consumer_secret": "cs_flash"}),
    "amazon": (
        {"client_id": "amzn1.application-oa2-client.flash", "client_secret": "flash-secret",
         "refresh_token": "Atzr|flash", "seller_id": "A1FLASHSELLER"},
        {"client_id": "amzn1.application-oa2-client.flash", "client_secret": "flash-secret",
         "refresh_token": "Atzr|flash", "seller_id": "A1FLASHSELLER"},
    ),
}


class InboundBenchError(RuntimeError):
    """The run could not be measured (did not settle, counts not exact)."""


def wait_for(predicate: Callable[[], object], *, timeout: float, message: str, interval: float = 0.05):
    from syncsvc.processes import wait_for as wait

    try:
        return wait(predicate, timeout=timeout, message=f"timed out after {timeout:.0f} s: {message}", interval=interval)
    except TimeoutError as exc:
        raise InboundBenchError(str(exc)) from None


# --- 1. inbound throughput ------------------------------------------------------------------


@dataclass
class InboundResult:
    orders: int
    deliveries: int
    answered_in_s: float  # from the first POST to the last answer
    applied_in_s: float  # from the first POST to the moment the ledger holds every sale
    exact: bool
    health_per_s: float
    failures: int

    @property
    def answered_per_s(self) -> float:
        return self.deliveries / self.answered_in_s

    @property
    def applied_per_s(self) -> float:
        return self.orders / self.applied_in_s

    @property
    def met(self) -> bool:
        return self.exact and self.failures == 0 and self.applied_per_s >= TARGET_APPLIED_PER_S

    def markdown(self) -> str:
        verdict = "met" if self.met else "**not met**"
        rows = [
            ["order webhooks (syncsvc: verify, store, ack; apply in the worker)", f"{self.deliveries:,}",
             f"{self.answered_per_s:,.0f}", f"{self.applied_per_s:,.0f}",
             "yes" if self.exact else "**no**"],
            ["baseline: `GET /health/` (one DB and one Redis round trip)", f"{self.deliveries:,}",
             f"{self.health_per_s:,.0f}", "", ""],
        ]
        table = markdown_table(["requests", "count", "answered/s", "orders applied/s", "count exact"], rows)
        return (
            f"{table}\n\nAnswered: {self.answered_per_s / self.health_per_s:.2f}× the baseline's rate; "
            f"{self.failures} non-200 answers. Target ≥ {TARGET_APPLIED_PER_S:.0f} orders applied/s: {verdict} "
            f"({self.applied_per_s:,.0f}/s)."
        )


def _order_body(order_id: int, sku: str) -> bytes:
    """An `orders/create` body shaped like Shopify's (the fields syncsvc reads, and the usual ones)."""
    line_id = order_id * 10 + 1
    return json.dumps({
        "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "name": f"#{order_id}",
        "financial_status": "paid", "fulfillment_status": None, "cancelled_at": None, "currency": "USD",
        "created_at": "2026-11-27T10:00:00-05:00", "total_price": "10.00",
        "line_items": [{"id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}", "sku": sku,
                        "quantity": 1, "price": "10.00", "fulfillment_status": None, "title": sku}],
    }, separators=(",", ":")).encode()


def _signed_headers(body: bytes, event_id: str) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": "bench.myshopify.com", "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-11-27T15:00:00.000Z",
    }


def _post_all(requests_to_send: list[tuple[str, str, bytes | None, dict]]) -> tuple[float, int]:
    """Send (method, url, body, headers) from CLIENT_THREADS keep-alive connections; (seconds, failures).

    `http.client` rather than `requests`: the client shares the machine's two cores with what it
    measures, and `requests` spends about twice the CPU per call. The baseline goes through the
    same client, so the ratio is fair either way."""
    local = threading.local()
    failures = 0
    lock = threading.Lock()

    def send(request) -> None:
        nonlocal failures
        method, url, body, headers = request
        parts = urlsplit(url)
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            connection.close()
            local.connection = None
            ok = False
        if not ok:
            with lock:
                failures += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        list(pool.map(send, requests_to_send))
    return time.monotonic() - started, failures


def inbound(*, web_url: str, orders: int, log: Callable[[str], None]) -> InboundResult:
    from channels.models import Channel, InboundEvent
    from inventory import services
    from inventory.models import StockMovement

    skus = [f"IN-{n:04d}" for n in range(INBOUND_SKUS)]
    services.product_create(handle="inbound-bench", title="Inbound bench",
                            variants=[{"sku": sku, "price": "10.00"} for sku in skus])
    for sku in skus:
        services.stock_adjust(sku=sku, delta=1_000_000, reason="receipt", reference=f"bench-seed-{sku}")
    channel = Channel(name="inbound-bench", kind="shopify", base_url="http://127.0.0.1:9/unused", enabled=False)
    channel.credentials = {"access_token": "unused", "webhook_secret": SECRET}
    channel.save()  # disabled: the bench measures what comes in, not pushes out
    rng = random.Random(4)
    first_id = 7_000_000_000
    deliveries = []
    for n in range(orders):
        body = _order_body(first_id + n, rng.choice(skus))
        event_id = str(uuid.uuid4())
        deliveries.append(("POST", f"{web_url}/webhooks/{channel.pk}/", body, _signed_headers(body, event_id)))
        if rng.random() < DUPLICATE_SHARE:
            deliveries.append(("POST", f"{web_url}/webhooks/{channel.pk}/", body, _signed_headers(body, event_id)))
    log(f"inbound: {orders:,} orders, {len(deliveries):,} deliveries from {CLIENT_THREADS} threads")
    sales_before = StockMovement.objects.filter(reason="sale").count()
    started = time.monotonic()
    answered_s, failures = _post_all(deliveries)

    def all_applied() -> bool:
        return StockMovement.objects.filter(reason="sale").count() - sales_before >= orders

    wait_for(all_applied, timeout=120 + orders / 50, message="the ledger did not get every sale", interval=0.02)
    applied_s = time.monotonic() - started
    sold = StockMovement.objects.filter(reason="sale").count() - sales_before
    applied = InboundEvent.objects.filter(channel=channel, status=InboundEvent.Status.APPLIED).count()
    health = [("GET", f"{web_url}/health/", None, {}) for _ in deliveries]
    health_s, _ = _post_all(health)
    result = InboundResult(orders, len(deliveries), answered_s, applied_s, sold == orders and applied == orders,
                           len(health) / health_s, failures)
    log(f"inbound: answered {result.answered_per_s:,.0f}/s, applied {result.applied_per_s:,.0f}/s, "
        f"baseline {result.health_per_s:,.0f}/s, exact: {result.exact}")
    return result


# --- 2. flash sale ----------------------------------------------------------------------------


@dataclass
class FlashRun:
    buffer: str
    stock: int
    sold: int
    refused: int
    ledger_on_hand: int
    shown_at_end: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def oversold(self) -> int:
        return max(0, self.sold - self.stock)

    @property
    def unsold(self) -> int:
        return max(0, self.stock - self.sold)


@dataclass
class FlashResult:
    rate: float
    stock: int
    runs: list[FlashRun]
    latency_p99_ms: dict[str, float]

    def markdown(self) -> str:
        rows = [
            [run.buffer, f"{run.stock}", f"{run.sold}", f"**{run.oversold}**" if run.oversold else "0",
             f"{run.unsold}", f"{run.refused}", f"{run.duration_s:.1f}"]
            for run in self.runs
        ]
        table = markdown_table(["buffer per channel", "stock", "sold", "oversold", "held back unsold",
                                "refused by the stores", "sale lasted s"], rows)
        latency = ", ".join(f"{kind} {value:,.0f} ms" for kind, value in self.latency_p99_ms.items())
        return (f"{table}\n\nThree stores selling one SKU at {self.rate:g} sales/s in all; p99 inventory sync "
                f"latency (commit to the store's answer) during the runs: {latency}.")


class FlashSale:
    def __init__(self, *, stack_url: str, web_url: str, stock: int, rate: float, log: Callable[[str], None]):
        self.sandbox_url = stack_url
        self.web_url = web_url
        self.stock = stock
        self.rate = rate
        self.log = log
        self.session = requests.Session()

    def _control(self, method: str, kind: str, store: str, resource: str, **body):
        url = f"{self.sandbox_url}/_sandbox/{kind}/{store}/{resource}"
        return self.session.request(method, url, json=body or None, timeout=10)

    def setup(self, tag: str, settings: dict, safety_stock: int):
        from channels.models import Channel

        channels = {}
        for kind in FLASH_KINDS:
            store = f"flash-{tag}-{kind}"
            credentials, config = STORE_CREDENTIALS[kind]
            channel = Channel(name=store, kind=kind, base_url=f"{self.sandbox_url}/{kind}/{store}",
                              safety_stock=safety_stock, settings={**settings, "api_version": "2026-10"} if kind == "shopify" else dict(settings))
            channel.credentials = {**credentials, "webhook_secret": SECRET}
            channel.save()
            self._control("POST", kind, store, "config", **config, webhook_url=f"{self.web_url}/webhooks/{channel.pk}/",
                          webhook_secret=SECRET)
            channels[kind] = (channel, store)
        return channels

    def run(self, tag: str, *, safety_stock: int = 0, sized: bool = False) -> FlashRun:
        from inventory import services
        from inventory.selectors import stock_totals

        sku = f"FLASH-{tag}"
        settings = {"safety_stock_sized": True, "safety_stock_window_s": FLASH_WINDOW_S} if sized else {}
        channels = self.setup(tag, settings, safety_stock)
        for kind, (channel, store) in channels.items():
            answer = self._control("PUT", kind, store, f"items/{sku}", price="10.00", available=0, title=sku)
            answer.raise_for_status()
        services.product_create(handle=sku.lower(), title=sku, variants=[{"sku": sku, "price": "10.00"}])
        services.stock_adjust(sku=sku, delta=self.stock, reason="receipt", reference=f"flash-{tag}")
        shown = max(0, self.stock - safety_stock)
        wait_for(lambda: all(self._available(kind, store, sku) == shown for kind, (_, store) in channels.items()),
                 timeout=30, message=f"the stores never showed {shown} of {sku}")
        sold = refused = 0
        rng = random.Random(tag)
        last_sale = time.monotonic()
        started = time.monotonic()
        interval = 1.0 / self.rate
        next_at = started
        refused_since: dict[str, float] = {}
        lock = threading.Lock()
        pool = ThreadPoolExecutor(max_workers=8)

        def buy(kind: str, store: str) -> None:
            nonlocal sold, refused, last_sale
            response = requests.post(f"{self.sandbox_url}/_sandbox/{kind}/{store}/sales",
                                     json={"sku": sku, "quantity": 1}, timeout=10)
            with lock:
                if 200 <= response.status_code < 300:
                    sold += 1
                    last_sale = time.monotonic()
                    refused_since.pop(kind, None)
                else:
                    refused += 1
                    refused_since.setdefault(kind, time.monotonic())

        while True:
            now = time.monotonic()
            with lock:
                all_refusing = len(refused_since) == len(FLASH_KINDS) and all(
                    now - since >= 2.0 for since in refused_since.values())
            if all_refusing or now - started > 300:
                break
            kind = rng.choice(FLASH_KINDS)
            pool.submit(buy, kind, channels[kind][1])
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        pool.shutdown(wait=True)
        duration = last_sale - started
        wait_for(lambda: stock_totals(sku=sku)[0] == self.stock - sold, timeout=60,
                 message=f"the ledger did not count all {sold} sales of {sku}")
        run = FlashRun("sized" if sized else f"{safety_stock} unit(s)", self.stock, sold, refused,
                       stock_totals(sku=sku)[0],
                       {kind: self._available(kind, store, sku) for kind, (_, store) in channels.items()},
                       duration)
        self.log(f"flash {run.buffer}: sold {sold} of {self.stock} (oversold {run.oversold}, unsold {run.unsold}), "
                 f"refused {refused}, shown at the end {run.shown_at_end}")
        return run

    def _available(self, kind: str, store: str, sku: str) -> int | None:
        response = self._control("GET", kind, store, f"items/{sku}")
        return response.json().get("available") if response.status_code == 200 else None


def _latency_p99(kinds: tuple[str, ...]) -> dict[str, float]:
    from channels.models import SyncAttempt

    result = {}
    for kind in kinds:
        values = sorted(SyncAttempt.objects.filter(channel__kind=kind, event_type="inventory", status="success",
                                                   channel__name__startswith="flash-")
                        .values_list("latency_ms", flat=True))
        values = [v for v in values if v is not None]
        result[kind] = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))] if values else float("nan")
    return result


# --- both -------------------------------------------------------------------------------------


@dataclass
class InboundBenchResult:
    inbound: InboundResult | None
    flash: FlashResult | None

    def markdown(self) -> str:
        parts = []
        if self.inbound:
            parts += ["### Inbound order webhooks", "", self.inbound.markdown(), ""]
        if self.flash:
            parts += ["### Flash sale: oversells by buffer", "", self.flash.markdown(), ""]
        return "\n".join(parts)


def measure(*, sandbox_url: str, web_url: str, orders: int = 3000, stock: int = 60, rate: float = 20.0,
            buffers: tuple[str, ...] = ("0", "2", "sized"), log: Callable[[str], None] = print) -> InboundBenchResult:
    """Run both on a running stack (sandbox, web, worker, beat) and the Django database it serves."""
    inbound_result = inbound(web_url=web_url, orders=orders, log=log) if orders else None
    flash_result = None
    if buffers:
        sale = FlashSale(stack_url=sandbox_url, web_url=web_url, stock=stock, rate=rate, log=log)
        runs = []
        for n, buffer in enumerate(buffers):
            tag = f"{n}{uuid.uuid4().hex[:4]}"
            runs.append(sale.run(tag, sized=True) if buffer == "sized" else sale.run(tag, safety_stock=int(buffer)))
        flash_result = FlashResult(rate, stock, runs, _latency_p99(FLASH_KINDS))
    return InboundBenchResult(inbound_result, flash_result)


# --- standalone -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000, help="order webhooks for the inbound rate (3,000; 0 skips)")
    parser.add_argument("--stock", type=int, default=60, help="units of the flash-sale SKU (60)")
    parser.add_argument("--rate", type=float, default=20.0, help="flash-sale purchases per second over 3 stores (20)")
    parser.add_argument("--buffers", default="0,2,sized",
                        help="comma-separated buffers to run the flash sale with: units, or 'sized' (0,2,sized; '' skips)")
    return parser.parse_args(argv)


def buffers_of(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    for value in values:
        if value != "sized" and not value.isdigit():
            raise SystemExit(f"inbound: --buffers takes whole numbers or 'sized', got {value!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    from benchmarks.standalone import run_standalone

    args = parse_args(argv)
    buffers = buffers_of(args.buffers)

    def run(*, stack, sandbox_url, web_url, log):
        return measure(sandbox_url=sandbox_url, web_url=web_url, orders=args.orders, stock=args.stock,
                       rate=args.rate, buffers=buffers, log=log)

    return run_standalone("inbound", run, errors=InboundBenchError, with_web=True)


if __name__ == "__main__":
    sys.exit(main())
