"""Reading a channel's live values back and comparing them with the PIM's: what a resync's
verification and reconciliation both do.

The PIM's side is what the channel should be shown now: the price, and the stock as the
channel's safety-stock policy shows it (`channels.safety.shown_quantities`). A read the rate
limit does not allow now raises `ReadThrottled` (the caller reschedules, never sleeps); a
read the channel fails raises `ReadFailed`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from inventory.selectors import variants_snapshot

from ..adapters.base import ChannelAdapter, ChannelThrottled, LiveValue, Outcome
from ..adapters.registry import adapter_class
from ..adapters.rest import CallError
from ..adapters.shopify.errors import ShopifyCallError
from ..models import Channel
from ..safety import shown_quantities

# SKUs per `fetch` by kind: what one read call (or one reserved burst of calls) covers.
READ_BATCH = {"shopify": 100, "woocommerce": 100, "magento": 100, "amazon": 5}
# SKUs one unit of the channel's default (or read) bucket reads, to pace reconciliation and
# estimate a resync's ceiling: Shopify's lookup costs about a point per SKU, WooCommerce and
# Magento read 100 SKUs in one or two calls, Amazon reads one SKU per call.
SKUS_PER_READ_UNIT = {"shopify": 1.0, "woocommerce": 100.0, "magento": 50.0, "amazon": 1.0}


class ReadThrottled(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"throttled: retry after {retry_after:.2f}s")
        self.retry_after = retry_after


class ReadFailed(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Expected:
    """What the channel should show for a variant now."""

    variant_id: int
    sku: str
    price: Decimal
    available: int


@dataclass(frozen=True)
class Difference:
    variant_id: int
    sku: str
    aspect: str  # price | inventory | listing
    expected: str
    live: str

    def describe(self) -> str:
        return f"{self.sku} {self.aspect} {self.live or 'none'} (PIM {self.expected})"


def can_read_back(channel: Channel) -> bool:
    """Whether the channel's adapter implements `fetch`."""
    return adapter_class(channel.kind).fetch is not ChannelAdapter.fetch


def read_batch_size(channel: Channel) -> int:
    return max(1, int(channel.settings.get("read_batch_size", READ_BATCH.get(channel.kind, 50))))


def read_rate_per_s(channel: Channel) -> float:
    """About how many SKUs per second the channel's rate limit lets us read (a ceiling)."""
    buckets = adapter_class(channel.kind).bucket_defaults(channel.settings or {})
    rate, _ = buckets.get("get", buckets["default"])
    return max(0.01, rate * SKUS_PER_READ_UNIT.get(channel.kind, 1.0))


def live_read(adapter: ChannelAdapter, skus: Sequence[str]) -> dict[str, LiveValue]:
    """`adapter.fetch(skus)`, its errors told apart: ReadThrottled (wait), ReadFailed."""
    try:
        return adapter.fetch(list(skus))
    except ChannelThrottled as throttled:
        raise ReadThrottled(throttled.retry_after) from None
    except (CallError, ShopifyCallError) as error:  # Shopify's fetch lets its own error through
        if error.outcome is Outcome.THROTTLED:
            raise ReadThrottled(error.retry_after or 1.0) from None
        raise ReadFailed(error.code, error.message) from None


def expected_values(channel: Channel, variant_ids: Iterable[int]) -> dict[int, Expected]:
    """The PIM's current values per variant as this channel should show them (variants gone
    meanwhile are left out)."""
    snapshots = variants_snapshot(variant_ids=variant_ids)
    if not snapshots:
        return {}
    ids = list(snapshots)
    shown = shown_quantities(channel, {pk: (s.on_hand, s.reserved) for pk, s in snapshots.items()}, ids)
    return {pk: Expected(pk, s.sku, s.price, shown[pk]) for pk, s in snapshots.items()}


def differences_of(
    expected: Expected, live: LiveValue | None, *, aspects: Iterable[str], price_tolerance: Decimal = Decimal(0),
    stock_tolerance: int = 0,
) -> list[Difference]:
    """How the live value differs from the PIM's beyond the tolerances, per aspect; an unlisted
    SKU is one `listing` difference."""
    if live is None or not live.listed:
        return [Difference(expected.variant_id, expected.sku, "listing", "listed", "missing")]
    found = []
    if "price" in aspects and (live.price is None or abs(live.price - expected.price) > price_tolerance):
        found.append(Difference(expected.variant_id, expected.sku, "price", _money(expected.price), _money(live.price)))
    if "inventory" in aspects and (live.available is None or abs(live.available - expected.available) > stock_tolerance):
        live_stock = "" if live.available is None else str(live.available)
        found.append(Difference(expected.variant_id, expected.sku, "inventory", str(expected.available), live_stock))
    return found


def _money(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value, "f")
