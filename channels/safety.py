"""What a channel is shown of a SKU: `max(0, on_hand - reserved - buffer)`, over the stock
locations the channel sells from.

The buffer (safety stock) per channel is, from its record and settings:
- `safety_stock`: units held back (absolute);
- `settings.safety_stock_percent`: a share of the sellable units, rounded up;
- `settings.safety_stock_sized: true`: at least the units the other channels are expected to
  sell while their sale is on its way to this one: (the p99 wait of inbound events + this
  channel's p99 inventory sync latency) x the SKU's recent sell velocity on the other
  channels (`safety_stock_window_s`, default 300 s), rounded up. It grows in a flash sale and
  is zero for a SKU that does not sell;
- `settings.safety_stock_min` / `safety_stock_max`: bounds on the sum.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Min, Sum
from django.utils import timezone

from inventory.models import StockMovement
from inventory.selectors import stock_by_variant

from .models import Channel, InboundEvent, SyncAttempt

DEFAULT_WINDOW_S = 300.0
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_SAMPLE = 5_000
# Before a channel has any measured latency, a sized buffer assumes this much.
DEFAULT_LATENCY_S = 1.0
# Sales older than this still count as a rate over at least this span (one sale is not a rate).
MIN_SPAN_S = 1.0
_LATENCY_CACHE_S = 30.0
_latency_cache: dict[object, tuple[float, float]] = {}


@dataclass(frozen=True)
class SafetyPolicy:
    units: int = 0
    percent: float = 0.0
    minimum: int = 0
    maximum: int | None = None
    sized: bool = False
    window_s: float = DEFAULT_WINDOW_S

    def buffer(self, sellable: int, *, sized_units: int = 0) -> int:
        held = self.units + math.ceil(max(0, sellable) * self.percent / 100)
        if self.sized:
            held = max(held, sized_units)
        held = max(held, self.minimum)
        return min(held, self.maximum) if self.maximum is not None else held

    def shown(self, sellable: int, *, sized_units: int = 0) -> int:
        return max(0, sellable - self.buffer(sellable, sized_units=sized_units))


def policy_of(channel: Channel) -> SafetyPolicy:
    settings = channel.settings or {}
    maximum = settings.get("safety_stock_max")
    return SafetyPolicy(
        units=channel.safety_stock,
        percent=float(settings.get("safety_stock_percent", 0) or 0),
        minimum=int(settings.get("safety_stock_min", 0) or 0),
        maximum=None if maximum is None else int(maximum),
        sized=bool(settings.get("safety_stock_sized", False)),
        window_s=float(settings.get("safety_stock_window_s", DEFAULT_WINDOW_S)),
    )


def settings_errors(settings: Mapping) -> dict[str, str]:
    """What is wrong with a channel's safety-stock settings, by setting name."""
    errors = {}

    def number(name, *, integer=False, upper=None):
        value = settings.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            errors[name] = "must be a whole number" if integer else "must be a number"
        elif value < 0 or (upper is not None and value > upper):
            errors[name] = f"must be between 0 and {upper}" if upper is not None else "must not be negative"
        else:
            return value
        return None

    number("safety_stock_percent", upper=100)
    low = number("safety_stock_min", integer=True)
    high = number("safety_stock_max", integer=True)
    window = number("safety_stock_window_s")
    if window == 0:
        errors["safety_stock_window_s"] = "must be positive"
    if low is not None and high is not None and low > high:
        errors["safety_stock_max"] = "must not be below safety_stock_min"
    if "safety_stock_sized" in settings and not isinstance(settings["safety_stock_sized"], bool):
        errors["safety_stock_sized"] = "must be true or false"
    locations = settings.get("locations")
    if locations is not None and (not isinstance(locations, list) or not all(isinstance(x, str) and x for x in locations)):
        errors["locations"] = "must be a list of location codes"
    return errors


def channel_locations(channel: Channel) -> list[str] | None:
    """The stock locations a channel sells from; None: all of them."""
    return (channel.settings or {}).get("locations") or None


def shown_quantities(channel: Channel, stock: Mapping[int, tuple[int, int]] | None, variant_ids: Iterable[int]) -> dict[int, int]:
    """What `channel` is shown of each variant. `stock` is (on_hand, reserved) over all
    locations when the caller has it already; it is re-read for channels mapped to locations."""
    ids = list(variant_ids)
    locations = channel_locations(channel)
    if stock is None or locations:
        stock = stock_by_variant(variant_ids=ids, locations=locations)
    policy = policy_of(channel)
    sized = sized_buffers(channel, ids, window_s=policy.window_s) if policy.sized else {}
    shown = {}
    for variant_id in ids:
        on_hand, reserved = stock.get(variant_id, (0, 0))
        shown[variant_id] = policy.shown(max(0, on_hand - reserved), sized_units=sized.get(variant_id, 0))
    return shown


def sized_buffers(channel: Channel, variant_ids: list[int], *, window_s: float) -> dict[int, int]:
    """ceil(exposure x units/s sold on the other channels), per variant that sells.

    The velocity is over the span the sales actually cover (at least `MIN_SPAN_S`, at most
    the window): a flash sale that began two seconds ago sells at its rate now, not at that
    rate spread over the whole window. The exposure is how long another channel's sale takes
    to reach this one: the p99 of inbound events waiting to be applied plus this channel's
    p99 inventory push latency."""
    now = timezone.now()
    since = now - timedelta(seconds=window_s)
    sold = (
        StockMovement.objects.filter(variant_id__in=variant_ids, reason=StockMovement.Reason.SALE, created_at__gte=since,
                                     source__startswith="channel:")
        .exclude(source=f"channel:{channel.pk}")
        .values("variant_id")
        .annotate(units=Sum("delta"), first=Min("created_at"))
    )
    exposure_s = p99_inbound_lag_s() + p99_latency_s(channel)
    buffers = {}
    for row in sold:
        if not row["units"]:
            continue
        span_s = min(window_s, max(MIN_SPAN_S, (now - row["first"]).total_seconds()))
        buffers[row["variant_id"]] = math.ceil(exposure_s * -row["units"] / span_s)
    return buffers


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _cached(key, compute) -> float:
    cached = _latency_cache.get(key)
    now = time.monotonic()
    if cached and now - cached[0] < _LATENCY_CACHE_S:
        return cached[1]
    value = compute()
    _latency_cache[key] = (now, value)
    return value


def p99_latency_s(channel: Channel) -> float:
    """The channel's p99 commit-to-acknowledgement latency of inventory pushes over the last
    hour, in seconds (cached briefly: every batch of a flush asks)."""

    def compute() -> float:
        values = list(
            SyncAttempt.objects.filter(
                channel=channel, event_type="inventory", status=SyncAttempt.Status.SUCCESS,
                timestamp__gte=timezone.now() - LATENCY_WINDOW, latency_ms__isnull=False,
            )
            .order_by("-id")
            .values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
        )
        return _p99(values) / 1000 if values else DEFAULT_LATENCY_S

    return _cached(channel.pk, compute)


def p99_inbound_lag_s() -> float:
    """p99 of how long inbound events waited between being stored and applied (last hour)."""

    def compute() -> float:
        rows = list(
            InboundEvent.objects.filter(processed_at__isnull=False, received_at__gte=timezone.now() - LATENCY_WINDOW)
            .order_by("-id")
            .values_list("received_at", "processed_at")[:LATENCY_SAMPLE]
        )
        return _p99([(done - received).total_seconds() for received, done in rows]) if rows else 0.0

    return _cached("inbound", compute)
