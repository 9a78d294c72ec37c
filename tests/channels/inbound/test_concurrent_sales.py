"""1,000 sales at once over three sandbox stores, each order webhook delivered up to three
times and applied in whatever order two worker processes take them: the ledger counts every
accepted sale exactly once, and every store converges to what the ledger says."""
from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from channels.models import InboundEvent
from inventory.models import StockMovement
from inventory.selectors import stock_totals
from tests.factories import product_with_variants, sandbox_channel
from tests.support.sandbox import SandboxControl, SandboxControlError, wait_until
from tests.support.stock import wait_stock_shown

pytestmark = pytest.mark.stack
SALES = 1_000
SKUS = [f"RUSH-{n:02d}" for n in range(20)]
STOCK = 100
KINDS = ("shopify", "woocommerce", "amazon")


def test_a_thousand_concurrent_sales_with_redeliveries_count_exactly_and_every_store_converges(live, web_url, store_name):
    # given: three stores holding 100 of each of 20 SKUs, all sending their order webhooks to us
    stores = {kind: f"{store_name}-{kind}" for kind in KINDS}
    for kind, store in stores.items():
        sandbox_channel(live, kind, store, receiver_url=web_url)
        for sku in SKUS:
            live.sandbox.put_item(kind, store, sku, price="10.00", available=STOCK, title=sku)
    live.sandbox.config("shopify", stores["shopify"], send_orders_paid=True)  # orders/create then orders/paid
    product_with_variants(handle="rush", skus=SKUS, stock=STOCK)
    for sku in SKUS:
        wait_stock_shown(live.sandbox, sku, {(kind, store): STOCK for kind, store in stores.items()}, timeout=30)
    rng = random.Random(20261201)
    plan = [(rng.choice(KINDS), rng.choice(SKUS), rng.randint(1, 3)) for _ in range(SALES)]

    # when: 1,000 customers buy one unit each, from 8 threads at once
    def sell(sale) -> tuple[str, str] | None:
        kind, sku, deliveries = sale
        control = SandboxControl(live.sandbox_url)
        try:
            control.sales(kind, stores[kind], sku=sku, quantity=1, deliveries=deliveries)
        except SandboxControlError as error:  # the store refused (its own stock ran out): no sale
            refusals.append(f"{kind}: {error}"[:160])
            return None
        return kind, sku

    refusals: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = [sale for sale in pool.map(sell, plan) if sale]

    # then: every accepted sale is in the ledger once, and nothing else is
    sold = Counter(sku for _, sku in accepted)
    wait_until(lambda: StockMovement.objects.filter(reason="sale").count() >= len(accepted), timeout=120,
               interval=0.5, message=lambda: f"{len(accepted)} sales accepted by the stores; the ledger has "
               f"{StockMovement.objects.filter(reason='sale').count()}; refused: {Counter(refusals).most_common(3)}")
    assert StockMovement.objects.filter(reason="sale").count() == len(accepted)
    assert not InboundEvent.objects.filter(status=InboundEvent.Status.NEEDS_ATTENTION).exists()
    for sku in SKUS:
        assert stock_totals(sku=sku) == (STOCK - sold[sku], 0), sku

    # and every store shows the ledger's count for every SKU
    def converged() -> bool:
        return all(
            live.sandbox.item(kind, store, sku)["available"] == STOCK - sold[sku]
            for kind, store in stores.items() for sku in SKUS
        )

    wait_until(converged, timeout=120, interval=0.5, message="the stores did not converge to the ledger")
