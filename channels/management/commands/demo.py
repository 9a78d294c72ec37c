"""`make demo`: a scripted end-to-end run that exits, printing per-channel propagation latency.

It starts its own sandbox and Celery worker (real processes, as `make run` does), creates three
webhook channels and a product, changes prices and stock through the REST API, waits for every
store to show each value, and prints what each channel saw and how fast.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from channels.models import Channel, SyncAttempt
from inventory.models import Product, StockMovement
from syncsvc.processes import ProcessStack, database_url_for, wait_for

CHANNELS = [("search", 0), ("cms", 0), ("analytics", 2)]


class Command(BaseCommand):
    help = "Run a scripted end-to-end scenario against a real worker and the sandbox; print latency per channel."

    def add_arguments(self, parser):
        parser.add_argument("--changes", type=int, default=20)

    def handle(self, changes, **options):
        call_command("migrate", verbosity=0, interactive=False)
        run = uuid.uuid4().hex[:6]
        env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict)}
        stack = ProcessStack(env=env, log_dir=Path(tempfile.mkdtemp(prefix="syncsvc-demo-")))
        try:
            sandbox = stack.start_sandbox()
            stack.start_worker(concurrency=2)
            stack.start_beat()
            self._scenario(run, sandbox, changes)
        except TimeoutError as exc:
            raise CommandError(f"demo did not converge: {exc}") from exc
        finally:
            stack.stop()
            self._clean(run)

    def _scenario(self, run, sandbox, changes):
        import requests

        client = self._client(run)
        channels = []
        for name, safety in CHANNELS:
            store = f"demo-{run}-{name}"
            requests.post(f"{sandbox}/_sandbox/webhook/{store}/config", json={"secret": "demo"}, timeout=5).raise_for_status()
            response = client.post(
                "/api/v1/channels/",
                {"name": store, "kind": "webhook", "base_url": f"{sandbox}/webhook/{store}",
                 "credentials": {"secret": "demo"}, "safety_stock": safety},
                format="json",
            )
            if response.status_code != 201:
                raise CommandError(f"channel not created: {response.content!r}")
            channels.append((store, safety))
        skus = [f"DEMO-{run}-{n:02d}" for n in range(changes)]
        created = client.post(
            "/api/v1/products/",
            {"handle": f"demo-{run}", "title": "Demo tee", "variants": [{"sku": sku, "price": "10.00"} for sku in skus]},
            format="json",
        )
        if created.status_code != 201:
            raise CommandError(f"product not created: {created.content!r}")
        for sku in skus:
            client.post(
                "/api/v1/inventory/adjustments/",
                {"sku": sku, "delta": 50, "reason": "receipt", "reference": f"demo-{run}-{sku}"},
                format="json",
            )

        def shown(store, sku):
            item = requests.get(f"{sandbox}/_sandbox/webhook/{store}/items/{sku}", timeout=5)
            return item.json() if item.status_code == 200 else None

        def wait_shown(sku, price, available):
            for store, safety in channels:
                wait_for(
                    lambda: (item := shown(store, sku)) and item["price"] == price and item["available"] == max(0, available - safety),
                    timeout=10, interval=0.005, message=f"{store} never showed {sku} at {price}, {available} available",
                )

        for sku in skus:
            wait_shown(sku, "10.00", 50)
        measured_from = SyncAttempt.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.stdout.write(f"demo: a price change and a sale on each of {len(skus)} SKUs through the API, to {len(channels)} channels")
        started = time.monotonic()
        for n, sku in enumerate(skus):
            price = f"{Decimal('10.00') + n + 1:.2f}"
            if client.patch(f"/api/v1/variants/{sku}/", {"price": price}, format="json").status_code != 200:
                raise CommandError("price update refused")
            client.post(
                "/api/v1/inventory/adjustments/",
                {"sku": sku, "delta": -1, "reason": "sale", "reference": f"demo-{run}-sale-{sku}"},
                format="json",
            )
            wait_shown(sku, price, 49)
        self.stdout.write(f"every store showed every change ({time.monotonic() - started:.2f}s in all)\n")
        self.stdout.write(f"{'channel':<22}{'safety':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
        for store, safety in channels:
            latencies = sorted(
                SyncAttempt.objects.filter(channel__name=store, status="success", id__gt=measured_from)
                .values_list("latency_ms", flat=True)
            )
            p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
            self.stdout.write(f"{store:<22}{safety:>7}{statistics.median(latencies):>9.1f}{p95:>9.1f}{latencies[-1]:>9.1f}")
        self.stdout.write("latency: the change's commit -> the channel's HTTP acknowledgement\n")

        hot = skus[0]
        writes_before = {store: shown(store, hot)["writes"] for store, _ in channels}
        for cents in range(1, 51):
            client.patch(f"/api/v1/variants/{hot}/", {"price": f"{100 + cents / 100:.2f}"}, format="json")
        wait_shown(hot, "100.50", 49)
        writes = ", ".join(f"{store}: {shown(store, hot)['writes'] - writes_before[store]}" for store, _ in channels)
        self.stdout.write(f"burst: 50 price edits of {hot} in a row reached each channel as a few writes ({writes}), ending at 100.50")

    def _client(self, run) -> APIClient:
        user = User.objects.create(username=f"demo-{run}")
        for role in ("pim", "ops"):
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client

    def _clean(self, run):
        Channel.objects.filter(name__startswith=f"demo-{run}-").delete()
        StockMovement.objects.filter(variant__product__handle=f"demo-{run}").delete()
        Product.objects.filter(handle=f"demo-{run}").delete()
        User.objects.filter(username=f"demo-{run}").delete()
