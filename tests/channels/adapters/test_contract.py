"""One contract every channel kind meets, run against its sandbox store over real HTTP.

Each kind supplies only what differs (credentials, store config, whether the store must hold
a SKU before we can push it); the suite drives the real flush service (real database, real
Redis buckets, real HTTP) and checks what the store shows and what was logged.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from channels.adapters.base import ChannelThrottled
from channels.adapters.registry import ADAPTERS
from channels.marks import next_due_in
from channels.models import Channel, SyncAttempt, SyncMark
from channels.sandbox.registry import EMULATORS
from channels.services.flush import adapter_for_channel, flush_channel
from inventory import services
from inventory.models import Variant
from tests.factories import product_with_variants
from tests.support.kinds import KINDS, KindSetup
from tests.support.sandbox import SandboxControl, wait_until


# A kind joins the suite once both its adapter and its emulator exist.
AVAILABLE = [kind for kind in KINDS if kind in ADAPTERS and kind in EMULATORS]

pytestmark = pytest.mark.django_db


@dataclass
class Store:
    setup: KindSetup
    control: SandboxControl
    name: str
    channel: Channel

    def item(self, sku):
        return self.control.item(self.setup.kind, self.name, sku)

    def fault(self, **body):
        return self.control.fault(self.setup.kind, self.name, **body)

    def requests(self):
        return self.control.requests(self.setup.kind, self.name)


@pytest.fixture(params=AVAILABLE)
def store(request, sandbox, store_name) -> Store:
    control, url = sandbox
    setup = KINDS[request.param]
    control.config(setup.kind, store_name, **setup.store_config)
    channel = Channel(
        name=f"{setup.kind}-{store_name}", kind=setup.kind, base_url=f"{url}/{setup.kind}/{store_name}",
        settings=setup.settings,
    )
    channel.credentials = setup.credentials
    channel.save()
    return Store(setup, control, store_name, channel)


def _seed(store: Store, skus, price="1.00", available=0):
    """Put the SKUs in the store first, as a merchant's existing catalog would be."""
    if store.setup.store_holds_skus:
        for sku in skus:
            store.control.put_item(store.setup.kind, store.name, sku, price=price, available=available, title=sku)


def _drain(channel: Channel, timeout: float = 20.0) -> None:
    """Flush until nothing is owed but what gave up, waiting (not sleeping) for due times."""

    def owed():
        return SyncMark.objects.pending().filter(channel=channel, failed_at__isnull=True).exists()

    def flushed_when_due():
        due_in = next_due_in(channel_id=channel.pk)
        if due_in is None:
            return not owed()
        if due_in == 0:
            flush_channel(channel_id=channel.pk)
        return not owed()

    wait_until(flushed_when_due, timeout=timeout, interval=0.05, message=f"{channel.kind} never drained")


def _price(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _set_price(sku, price):
    services.variant_update(variant=Variant.objects.get(sku=sku), fields={"price": Decimal(price)})


def test_price_and_stock_pushes_land(store):
    # given
    _seed(store, ["CT-1", "CT-2"])

    # when
    product_with_variants(handle="ct", skus=["CT-1", "CT-2"], price="10.00", stock=5)
    _drain(store.channel)

    # then
    for sku in ("CT-1", "CT-2"):
        item = store.item(sku)
        assert _price(item["price"]) == Decimal("10.00") and item["available"] == 5, item
    assert not SyncAttempt.objects.filter(channel=store.channel).exclude(status="success").exists()


def test_live_values_read_back_match(store):
    if not store.setup.can_fetch:
        pytest.skip(f"the {store.setup.kind} kind cannot be read back: a webhook receiver has no read API")
    # given
    _seed(store, ["RB-1", "RB-2"])
    product_with_variants(handle="rb", skus=["RB-1", "RB-2"], price="7.25", stock=3)
    _drain(store.channel)

    # when: read back, waiting out the channel's rate limit rather than sleeping
    adapter = adapter_for_channel(store.channel)

    def read():
        try:
            return adapter.fetch(["RB-1", "RB-2", "RB-GHOST"])
        except ChannelThrottled:
            return None

    live = wait_until(read, timeout=15, message="live values never readable")

    # then
    assert {sku: (_price(v.price), v.available, v.listed) for sku, v in live.items()} == {
        "RB-1": (Decimal("7.25"), 3, True),
        "RB-2": (Decimal("7.25"), 3, True),
        "RB-GHOST": (None, None, False),
    }


def test_a_503_then_recovers(store):
    # given
    _seed(store, ["SV-1"])
    product_with_variants(handle="sv", skus=["SV-1"], price="10.00", stock=2)
    _drain(store.channel)
    store.fault(status=503, count=1)

    # when
    _set_price("SV-1", "11.00")
    _drain(store.channel)

    # then
    assert _price(store.item("SV-1")["price"]) == Decimal("11.00")
    statuses = list(SyncAttempt.objects.filter(channel=store.channel, sku="SV-1", event_type="price").values_list("status", flat=True).order_by("id"))
    assert statuses[-2:] == ["failure", "success"]


def test_a_429_with_retry_after_is_waited_out_without_counting_a_failure(store):
    # given
    _seed(store, ["TH-1"])
    product_with_variants(handle="th", skus=["TH-1"], price="10.00", stock=2)
    _drain(store.channel)
    store.fault(status=429, count=1, retry_after=1)

    # when
    _set_price("TH-1", "12.00")
    wait_until(lambda: next_due_in(channel_id=store.channel.pk) == 0, message="price never due")
    outcome = flush_channel(channel_id=store.channel.pk)

    # then: rescheduled about a second later, logged as throttled, no attempt counted
    assert outcome.requeue_in is not None and outcome.requeue_in >= 0.5
    mark = SyncMark.objects.pending().get(channel=store.channel, variant__sku="TH-1", aspect="price")
    assert mark.attempts == 0
    _drain(store.channel)
    assert _price(store.item("TH-1")["price"]) == Decimal("12.00")
    statuses = list(SyncAttempt.objects.filter(channel=store.channel, sku="TH-1", event_type="price").values_list("status", flat=True).order_by("id"))
    assert statuses[-2:] == ["throttled", "success"] and "failure" not in statuses


def test_a_401_is_refreshed(store):
    # given
    _seed(store, ["AU-1"])
    product_with_variants(handle="au", skus=["AU-1"], price="10.00", stock=2)
    _drain(store.channel)
    store.fault(status=401, count=1)

    # when
    _set_price("AU-1", "13.00")
    _drain(store.channel)

    # then: delivered with no attempt failing
    assert _price(store.item("AU-1")["price"]) == Decimal("13.00")
    assert not SyncAttempt.objects.filter(channel=store.channel, sku="AU-1").exclude(status="success").exists()


def test_a_permanent_error_is_logged_per_sku_and_not_retried(store):
    # given: a SKU the store does not have (or, for a webhook receiver, a 400 for the batch)
    _seed(store, ["PE-1"])
    if not store.setup.store_holds_skus:
        product_with_variants(handle="pe", skus=["PE-1"], price="10.00")
        _drain(store.channel)
        store.fault(status=400, count=1)
        _set_price("PE-1", "14.00")
        failing = "PE-1"
    else:
        product_with_variants(handle="pe", skus=["PE-GHOST"], price="10.00")
        failing = "PE-GHOST"

    # when
    _drain(store.channel)
    calls = len(store.requests())
    flush_channel(channel_id=store.channel.pk)

    # then
    failures = SyncAttempt.objects.filter(channel=store.channel, sku=failing, status="failure")
    assert failures.exists() and all(f.error_code for f in failures)
    assert SyncMark.objects.filter(channel=store.channel, variant__sku=failing, failed_at__isnull=False).exists()
    assert len(store.requests()) == calls  # given up: nothing resent


def test_a_partial_batch_failure_marks_only_the_failed_skus(store):
    if not store.setup.per_item_failures:
        pytest.skip(f"the {store.setup.kind} kind acknowledges a batch as a whole")
    # given: one SKU of three is missing in the store
    _seed(store, ["PB-1", "PB-2"])

    # when
    product_with_variants(handle="pb", skus=["PB-1", "PB-2", "PB-GHOST"], price="9.00", stock=4)
    _drain(store.channel)

    # then
    for sku in ("PB-1", "PB-2"):
        assert _price(store.item(sku)["price"]) == Decimal("9.00")
        assert not SyncAttempt.objects.filter(channel=store.channel, sku=sku).exclude(status="success").exists()
    assert SyncAttempt.objects.filter(channel=store.channel, sku="PB-GHOST", status="failure").exists()
    assert not SyncMark.objects.pending().filter(channel=store.channel, variant__sku__in=["PB-1", "PB-2"]).exists()
