"""The nightly catalog refresh end to end: the API starts it, the real worker runs it on the
`bulk` queue through the channel's bulk path (Amazon JSON_LISTINGS_FEED, Shopify bulk
operations) against the sandbox, while price changes keep flowing; a worker killed half way
resumes without redoing finished chunks."""
from __future__ import annotations

import os
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import transaction

from channels.adapters.registry import adapter_class
from channels.models import CatalogRefresh, CatalogRefreshChunk, Listing, SyncAttempt
from inventory.capture import suppressed
from inventory.models import Product, Variant
from tests.factories import sandbox_channel, webhook_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack

PRODUCTS = 5000
CHUNK = 500
PRICE_SKUS = 20
# Sandbox and channel limits raised so the test's feeds are not paced like a real seller's
# (createFeed: 15 then one per two minutes; getFeedDocument: one per 45 s).
AMAZON_STORE_RATES = {
    f"{name}_{suffix}": value
    for name in ("create_feed_document", "create_feed", "get_feed", "get_feed_document")
    for suffix, value in (("rate_per_s", 20.0), ("burst", 50.0))
}
AMAZON_CHANNEL_RATES = {"feeds_rate_per_s": 20.0, "feeds_burst": 50, "feed_documents_rate_per_s": 20.0,
                        "feed_documents_burst": 50, "feed_poll_s": 0.3}


def _catalog(count: int) -> list[str]:
    """`count` one-variant products, written set-based as an import before any channel exists
    (no change records: nothing is owed to anyone yet)."""
    with transaction.atomic(), suppressed():
        products = Product.objects.bulk_create(
            Product(handle=f"p-{i:05d}", title=f"Product {i} title", description=f"About product {i}.")
            for i in range(count)
        )
        Variant.objects.bulk_create(
            Variant(product=product, sku=f"SKU-{i:05d}", price=Decimal("10.00")) for i, product in enumerate(products)
        )
    return [f"SKU-{i:05d}" for i in range(count)]


def _amazon_channel(live, store: str, *, chunk: int = CHUNK, **store_config):
    live.sandbox.config("amazon", store, **AMAZON_STORE_RATES, **store_config)
    return sandbox_channel(live, "amazon", store, settings={**AMAZON_CHANNEL_RATES, "catalog_refresh": {"chunk_size": chunk}})


def _refresh_of(channel) -> CatalogRefresh:
    return CatalogRefresh.objects.filter(channel=channel).latest("created_at")


def _finished(refresh: CatalogRefresh) -> bool:
    refresh.refresh_from_db()
    return refresh.status in (CatalogRefresh.Status.DONE, CatalogRefresh.Status.FAILED, CatalogRefresh.Status.CANCELLED)


def _price_stream(pim, skus: list[str], *, until, max_changes: int = 60) -> list[tuple[str, float]]:
    """Change a price every ~100 ms (round robin) while `until()` is false; (sku, cents) sent."""
    sent, cents = [], 1100
    while not until() and len(sent) < max_changes:
        sku = skus[len(sent) % len(skus)]
        cents += 1
        assert pim.patch(f"/api/v1/variants/{sku}/", {"price": f"{cents / 100:.2f}"}, format="json").status_code == 200
        sent.append((sku, cents))
        time.sleep(0.1)  # the stream's pace (what is measured is the channel's latency, not a wait)
    return sent


def _price_latencies(channel, skus) -> list[float]:
    return list(
        SyncAttempt.objects.filter(channel=channel, sku__in=skus, event_type="price", status="success")
        .values_list("latency_ms", flat=True)
    )


def _delivered(live, store, sent) -> bool:
    last = {}
    for sku, cents in sent:
        last[sku] = cents
    return all((live.sandbox.item("amazon", store, sku) or {}).get("price") == f"{cents / 100:.2f}"
               for sku, cents in last.items())


def test_a_refresh_of_5000_products_goes_through_amazon_feeds_while_price_changes_keep_their_latency(
    live, store_name, ops, pim
):
    # given: 5,000 products, an Amazon channel whose store lists the SKUs the price stream changes
    skus = _catalog(PRODUCTS)
    channel = _amazon_channel(live, store_name, feed_processing_ms=400)
    streamed = skus[:: PRODUCTS // PRICE_SKUS][:PRICE_SKUS]
    for sku in streamed:
        live.sandbox.put_item("amazon", store_name, sku, price="10.00", available=1)
    baseline = _price_stream(pim, streamed, until=lambda: False, max_changes=20)
    wait_until(lambda: _delivered(live, store_name, baseline), timeout=20, message="baseline prices never arrived")
    baseline_latencies = _price_latencies(channel, streamed)
    SyncAttempt.objects.filter(channel=channel).delete()

    # when: an operator starts the refresh, and prices keep changing meanwhile
    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")
    assert response.status_code == 202, response.content
    refresh = CatalogRefresh.objects.get(pk=response.json()["refresh"])
    assert response.json()["total"] == PRODUCTS and response.json()["chunks"]["pending"] == PRODUCTS // CHUNK
    sent = _price_stream(pim, streamed, until=lambda: _finished(refresh))

    # then: every chunk went as one feed, every SKU's title landed, nothing failed
    wait_until(lambda: _finished(refresh), timeout=60, message=lambda: f"refresh never finished: {_progress(ops, refresh)}")
    progress = _progress(ops, refresh)
    assert progress["status"] == "done", progress
    assert progress["done"] == PRODUCTS and progress["failed"] == 0 and progress["eta_s"] == 0.0
    assert progress["chunks"] == {"pending": 0, "started": 0, "done": PRODUCTS // CHUNK, "failed": 0}
    chunks = list(CatalogRefreshChunk.objects.filter(refresh=refresh))
    assert all(chunk.starts == 1 and chunk.remote.get("feed_id") for chunk in chunks)
    feeds = [r for r in live.sandbox.requests("amazon", store_name) if r.get("operation") == "createFeed"]
    assert len(feeds) == PRODUCTS // CHUNK
    for sku in (skus[0], skus[2345], skus[-1]):
        number = int(sku.split("-")[1])
        assert live.sandbox.item("amazon", store_name, sku)["title"] == f"Product {number} title"
    # ... and the price changes made meanwhile were delivered, each within the pipeline's bound
    wait_until(lambda: _delivered(live, store_name, sent), timeout=20, message="streamed prices never arrived")
    latencies = _price_latencies(channel, streamed)
    assert latencies and all(latency is not None and latency < 5000 for latency in latencies), latencies
    print(f"\nprice latency without refresh: p50 {statistics.median(baseline_latencies):.0f} ms, "
          f"max {max(baseline_latencies):.0f} ms; during the refresh of {PRODUCTS}: "
          f"p50 {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms "
          f"({len(latencies)} deliveries; refresh {progress['rate_per_s']} SKU/s)")


def test_a_refresh_killed_half_way_resumes_without_redoing_finished_chunks(live, store_name, ops):
    # given: a refresh under way, some chunks done, some not started (ten chunks of 200)
    products, chunk = 2000, 200
    _catalog(products)
    channel = _amazon_channel(live, store_name, chunk=chunk, feed_processing_ms=800)
    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")
    assert response.status_code == 202, response.content
    refresh = CatalogRefresh.objects.get(pk=response.json()["refresh"])
    chunks = CatalogRefreshChunk.objects.filter(refresh=refresh)
    wait_until(lambda: chunks.filter(status="done").count() >= 3, timeout=40, message="no chunk finished")
    assert chunks.filter(status="pending").exists(), "finished before the kill: nothing to resume"

    # when: SIGKILL the pool processes (one of them runs the refresh step)
    done_before = {c.seq: c.remote["feed_id"] for c in chunks.filter(status="done")}
    for pid in live.processes.worker_children():
        os.kill(pid, signal.SIGKILL)

    # then: it resumes (the lease runs out, beat re-kicks it) and finishes; no done chunk was redone
    wait_until(lambda: _finished(refresh), timeout=60, message=lambda: f"never resumed: {_progress(ops, refresh)}")
    assert refresh.status == "done" and refresh.done == products, _progress(ops, refresh)
    after = {c.seq: c for c in chunks}
    assert all(after[seq].starts == 1 and after[seq].remote["feed_id"] == feed_id for seq, feed_id in done_before.items())
    assert all(c.status == "done" for c in after.values())
    # a chunk whose start the kill cut off may have been started again; none more than that
    feeds = [r for r in live.sandbox.requests("amazon", store_name) if r.get("operation") == "createFeed"]
    assert products // chunk <= len(feeds) <= products // chunk + 2
    assert sum(c.starts for c in after.values()) <= products // chunk + 2


@pytest.mark.skipif(not adapter_class("shopify").supports_bulk_refresh, reason="the Shopify bulk path is not in yet")
def test_a_refresh_of_5000_products_goes_through_shopify_bulk_operations_beside_price_changes(
    live, store_name, ops, pim
):
    # given: 5,000 products in the PIM and in the store
    skus = _catalog(PRODUCTS)
    channel = sandbox_channel(live, "shopify", store_name, settings={
        "catalog_refresh": {"chunk_size": 1000}, "bulk_poll_interval_s": 0.5})
    live.sandbox.config("shopify", store_name, bulk_lines_per_s=5000)
    _shopify_store_holds(live, channel, store_name, skus)

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")
    assert response.status_code == 202, response.content
    refresh = CatalogRefresh.objects.get(pk=response.json()["refresh"])
    # ... while prices change in the same cost bucket
    streamed = skus[:: PRODUCTS // PRICE_SKUS][:PRICE_SKUS]
    sent = _price_stream(pim, streamed, until=lambda: _finished(refresh))

    # then: the refresh finished through bulk operations, one per chunk
    wait_until(lambda: _finished(refresh), timeout=60, message=lambda: f"refresh never finished: {_progress(ops, refresh)}")
    progress = _progress(ops, refresh)
    assert progress["status"] == "done" and progress["done"] == PRODUCTS, progress
    chunks = list(CatalogRefreshChunk.objects.filter(refresh=refresh))
    assert len(chunks) == 5 and all(c.starts == 1 and c.remote.get("bulk_operation_id") for c in chunks)
    assert live.sandbox.item("shopify", store_name, skus[4321])["title"] == "Product 4321 title"
    # ... and every price change made meanwhile was delivered within the pipeline's bound
    last = dict(sent)
    wait_until(lambda: all(live.sandbox.item("shopify", store_name, sku)["price"] == f"{cents / 100:.2f}"
                           for sku, cents in last.items()), timeout=20, message="streamed prices never arrived")
    latencies = _price_latencies(channel, streamed)
    assert latencies and all(latency is not None and latency < 5000 for latency in latencies), latencies
    print(f"\nShopify price latency during the refresh of {PRODUCTS}: p50 {statistics.median(latencies):.0f} ms, "
          f"max {max(latencies):.0f} ms ({len(latencies)} deliveries; refresh {progress['rate_per_s']} SKU/s)")


def _shopify_store_holds(live, channel, store, skus) -> None:
    """The store's products, seeded as a merchant's existing catalog (8 requests at a time),
    and their ids known to the channel's listings as earlier price and stock syncs left them."""
    with ThreadPoolExecutor(8) as pool:
        seeded = list(pool.map(lambda sku: live.sandbox.put_item("shopify", store, sku, price="10.00", available=1,
                                                                 title="old title"), skus))
    variant_ids = dict(Variant.objects.values_list("sku", "pk"))
    Listing.objects.bulk_create(
        Listing(channel=channel, variant_id=variant_ids[sku], external_ids={"product_id": item["product_id"]})
        for sku, item in zip(skus, seeded, strict=True)
    )


def _progress(ops, refresh) -> dict:
    """The refresh's progress as the API shows it (without the chunk list)."""
    body = ops.get(f"/api/v1/channels/{refresh.channel_id}/catalog-refresh/{refresh.pk}/").json()
    body["chunk_list"] = [
        (c["seq"], c["status"], c["starts"], c["polls"], c["started_at"], c["finished_at"], c["error"][:80])
        for c in body.get("chunk_list", [])
    ]
    return body


@pytest.mark.parametrize("kind", ["woocommerce", "magento"])
def test_a_refresh_goes_through_woocommerce_batches_and_magento_async_bulk(live, store_name, ops, kind):
    # given: 250 products in the PIM and in the store, under old titles
    skus = _catalog(250)
    channel = sandbox_channel(live, kind, store_name, settings={"catalog_refresh": {"chunk_size": 100}})
    for sku in skus:
        live.sandbox.put_item(kind, store_name, sku, price="10.00", available=1, title="old title")

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")
    assert response.status_code == 202, response.content
    refresh = CatalogRefresh.objects.get(pk=response.json()["refresh"])

    # then: three chunks, each one remote job (Woo: a batch call; Magento: an async bulk)
    wait_until(lambda: _finished(refresh), timeout=30, message=lambda: f"refresh never finished: {_progress(ops, refresh)}")
    progress = _progress(ops, refresh)
    assert progress["status"] == "done" and progress["done"] == 250 and progress["chunks"]["done"] == 3, progress
    assert all(c.starts == 1 for c in CatalogRefreshChunk.objects.filter(refresh=refresh))
    if kind == "magento":
        assert all(c.remote.get("bulk_uuid") for c in CatalogRefreshChunk.objects.filter(refresh=refresh))
    for sku in (skus[0], skus[123], skus[-1]):
        assert live.sandbox.item(kind, store_name, sku)["title"] == f"Product {int(sku.split('-')[1])} title"


def test_a_channel_without_a_bulk_path_is_refreshed_by_plain_content_pushes(live, store_name, ops):
    # given: a webhook channel (content items, no bulk refresh)
    _catalog(250)
    channel = webhook_channel(live, store_name)

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/catalog-refresh/", format="json")
    assert response.status_code == 202, response.content
    refresh = CatalogRefresh.objects.get(pk=response.json()["refresh"])

    # then: its chunks of a push batch each went as one push
    wait_until(lambda: _finished(refresh), timeout=30, message=lambda: f"refresh never finished: {_progress(ops, refresh)}")
    progress = _progress(ops, refresh)
    assert progress["status"] == "done" and progress["bulk"] is False and progress["done"] == 250, progress
    assert progress["chunks"]["done"] == 3 and all(c.starts == 1 for c in CatalogRefreshChunk.objects.filter(refresh=refresh))
