"""Shadow channels: what a channel in `mode: shadow` would be sent, against what it shows.

The flush runs as for a live channel up to the adapter, then asks `adapter.preview(items)`
(the push's own body builders, no call to the store) and logs the result on each attempt
(`SyncAttempt.payload`, status `ignored`, code `shadow`). Reads are allowed: the diff reads the
store's live values with the adapter's `fetch` (`live_values.live_read`), never writes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inventory.models import Variant

from ..models import Channel, SyncAttempt
from .flush import adapter_for_channel
from .live_values import _money, expected_values, live_read, read_batch_size


@dataclass(frozen=True)
class ShadowDiff:
    sku: str
    would_send: dict
    live: dict
    differs: list[str] = field(default_factory=list)
    last_payload: dict | None = None
    last_logged_at: str | None = None


def shadow_diff(*, channel: Channel, skus: Sequence[str]) -> list[ShadowDiff]:
    """Per SKU: what the channel would be sent now (the PIM's values as it is shown them), what
    it shows (read with `fetch`), the fields that differ, and the last payload logged for it.
    Raises `live_values.ReadThrottled` / `ReadFailed` when the store cannot be read now."""
    variants = dict(Variant.objects.filter(sku__in=list(skus)).values_list("pk", "sku"))
    expected = expected_values(channel, variants)
    titles = dict(Variant.objects.filter(pk__in=list(variants)).values_list("sku", "product__title"))
    adapter = adapter_for_channel(channel)
    wanted = [e.sku for e in expected.values()]
    live = {}
    size = read_batch_size(channel)
    for start in range(0, len(wanted), size):
        live.update(live_read(adapter, wanted[start:start + size]))
    last = {}
    for sku, payload, timestamp in (
        SyncAttempt.objects.filter(channel=channel, sku__in=wanted, error_code="shadow", payload__isnull=False)
        .order_by("sku", "-timestamp").distinct("sku").values_list("sku", "payload", "timestamp")
    ):
        last[sku] = (payload, timestamp.isoformat())
    rows = []
    for value in sorted(expected.values(), key=lambda e: e.sku):
        would = {"price": _money(value.price), "available": value.available, "title": titles.get(value.sku, "")}
        shown = live.get(value.sku)
        if shown is None or not shown.listed:
            live_fields, differs = {"listed": False}, ["listed"]
        else:
            live_fields = {"listed": True, "price": _money(shown.price), "available": shown.available}
            differs = [name for name in ("price", "available") if live_fields[name] != would[name]]
        payload, logged_at = last.get(value.sku, (None, None))
        rows.append(ShadowDiff(value.sku, would, live_fields, differs, payload, logged_at))
    return rows
