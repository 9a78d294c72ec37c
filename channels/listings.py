"""Listings: what each channel knows of a SKU (its ids there, listed or not, last sync)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.utils import timezone

from .adapters.base import PushItem, PushResult
from .models import Channel, Listing


def listings_known(*, channel: Channel, variant_ids: Iterable[int]) -> dict[int, dict]:
    return dict(
        Listing.objects.filter(channel=channel, variant_id__in=list(variant_ids)).values_list("variant_id", "external_ids")
    )


def listings_record(
    *, channel: Channel, results: list[tuple[int, PushResult]], items: Mapping[tuple[str, str], PushItem] | None = None
) -> None:
    """Store ids the adapter resolved and when each SKU last synced; unlisted SKUs say so.
    With the pushed `items` (by SKU and aspect), also what the channel was sent of price and
    stock: the threshold rules weigh a change against it. One upsert either way, in the
    flush's transaction: the figures cost no statement of their own (a table of their own
    would be another write per delivery)."""
    now = timezone.now()
    rows: dict[int, Listing] = {}
    sent_price: set[int] = set()
    sent_stock: set[int] = set()
    for variant_id, result in results:
        if result.external_ids is None and result.listed is None and not result.ok:
            continue
        row = rows.get(variant_id) or Listing(channel=channel, variant_id=variant_id, external_ids={})
        if result.external_ids:
            row.external_ids = {**row.external_ids, **result.external_ids}
        if result.listed is False:
            row.status = Listing.Status.UNLISTED
        elif result.ok:
            row.status = Listing.Status.LISTED
            row.last_synced_at = now
            item = items.get((result.sku, result.aspect)) if items else None
            if item is not None and item.aspect == "price":
                row.sent_price, row.sent_compare_at_price = item.price, item.compare_at_price
                sent_price.add(variant_id)
            elif item is not None and item.aspect == "inventory":
                row.sent_available = item.available
                sent_stock.add(variant_id)
        rows[variant_id] = row
    if not rows:
        return
    existing = {
        listing.variant_id: listing for listing in Listing.objects.filter(channel=channel, variant_id__in=list(rows))
    }
    for variant_id, row in rows.items():
        held = existing.get(variant_id)
        if held is None:
            continue
        row.external_ids = {**held.external_ids, **row.external_ids}
        row.last_synced_at = row.last_synced_at or held.last_synced_at
        if variant_id not in sent_price:
            row.sent_price, row.sent_compare_at_price = held.sent_price, held.sent_compare_at_price
        if variant_id not in sent_stock:
            row.sent_available = held.sent_available
    Listing.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["channel", "variant"],
        update_fields=[
            "status", "external_ids", "last_synced_at", "sent_price", "sent_compare_at_price", "sent_available", "updated_at",
        ],
    )
