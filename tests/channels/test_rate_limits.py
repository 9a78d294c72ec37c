"""Rate limits hold globally: several workers share one channel's bucket, and follow what
the channel reports, so the store almost never has to refuse us."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from channels.adapters.registry import ADAPTERS
from channels.models import Channel, SyncMark
from inventory import services
from inventory.models import Variant
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack

# kind -> (store config, channel credentials, channel settings); a kind joins once its adapter exists
STORES = {
    "shopify": ({"access_token": "shpat_rl", "plan": "standard"}, {"access_token": "shpat_rl"}, {"plan": "standard"}),
    "amazon": (
        {"client_id": "rl", "client_secret": "rl", "refresh_token": "rl", "seller_id": "A1SANDBOXSELLER"},
        {"client_id": "rl", "client_secret": "rl", "refresh_token": "rl", "seller_id": "A1SANDBOXSELLER"},
        {},
    ),
}
VARIANTS = 10
# kind -> (products, bulk rounds): Shopify takes 1,000 changes (100 SKUs, ten rounds) in about
# 6 s; Amazon's listings API sends one SKU per call at 5 calls/s, so it gets 30 SKUs, four
# rounds (120 changes): the same two workers sharing one bucket, in make test's time budget.
BURSTS = {"shopify": (10, 10), "amazon": (3, 4)}


@pytest.fixture
def second_worker(live):
    worker = live.processes.start_worker(name="worker2", concurrency=2)
    yield worker
    worker.stop()
    del live.processes.children["worker2"]


@pytest.mark.parametrize("kind", [kind for kind in STORES if kind in ADAPTERS])
def test_two_workers_push_a_burst_of_changes_within_the_channels_limit(live, second_worker, store_name, kind):
    # given: a store on its default plan holding the catalog, and a channel pointing at it
    store_config, credentials, settings = STORES[kind]
    products, rounds = BURSTS[kind]
    live.sandbox.config(kind, store_name, **store_config)
    skus = [f"RL-{p:02d}-{v}" for p in range(products) for v in range(VARIANTS)]
    for sku in skus:
        live.sandbox.put_item(kind, store_name, sku, price="1.00", available=0, title=sku)
    channel = Channel(name=f"rl-{kind}", kind=kind, base_url=f"{live.sandbox_url}/{kind}/{store_name}", settings=settings)
    channel.credentials = credentials
    channel.save()
    for p in range(products):
        services.product_create(
            handle=f"rl-{p}", title=f"RL {p}",
            variants=[{"sku": f"RL-{p:02d}-{v}", "price": Decimal("2.00")} for v in range(VARIANTS)],
        )

    # when: price changes in bulk rounds (every SKU each round) while both workers flush
    rng = random.Random(7)
    expected = {}
    for _ in range(rounds):
        rows = []
        for sku in skus:
            expected[sku] = Decimal(rng.randint(300, 9999)) / 100
            rows.append(services.PriceRow(sku=sku, price=expected[sku]))
        services.prices_bulk_set(rows=rows)

    # then: every change lands...
    def settled():
        return not SyncMark.objects.pending().filter(channel=channel).exists()

    wait_until(settled, timeout=300, interval=0.5, message=f"{kind}: changes still owed")
    shown = {item["sku"]: Decimal(str(item["price"])) for item in live.sandbox.items(kind, store_name)}
    assert {sku: shown.get(sku) for sku in skus} == expected
    assert not SyncMark.objects.filter(channel=channel, failed_at__isnull=False).exists()
    # ...and the store refused us for going over its limit on at most 1% of the calls
    stats = live.sandbox.stats(kind, store_name)
    assert stats["calls"] > 0
    assert stats["throttled"] <= max(2, stats["calls"] // 100), stats
    assert Variant.objects.count() == len(skus)
