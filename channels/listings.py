"""Listings: what each channel knows of a SKU (its ids there, listed or not, last sync)."""
from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from .adapters.base import PushResult
from .models import Channel, Listing


def listings_known(*, channel: Channel, variant_ids: Iterable[int]) -> dict[int, dict]:
    return dict(
        Listing.objects.filter(channel=channel, variant_id__in=list(variant_ids)).values_list("variant_id", "external_ids")
    )


def listings_record(*, channel: Channel, results: list[tuple[int, PushResult]]) -> None:
    """Store ids the adapter resolved and when each SKU last synced; unlisted SKUs say so."""
    now = timezone.now()
    rows: dict[int, Listing] = {}
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
    Listing.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["channel", "variant"],
        update_fields=["status", "external_ids", "last_synced_at", "updated_at"],
    )
