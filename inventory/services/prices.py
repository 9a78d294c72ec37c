from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from ..capture import suppressed
from ..errors import BulkRowsError
from ..models import Variant
from .changes import changes_record


@dataclass(frozen=True)
class PriceRow:
    sku: str
    price: Decimal
    changed_at: datetime | None = None


@dataclass(frozen=True)
class BulkPriceResult:
    applied: int
    ignored: int
    changed: int


@transaction.atomic
def prices_bulk_set(*, rows: list[PriceRow], origin: str = "bulk") -> BulkPriceResult:
    """Set many prices in one transaction with set-based SQL.

    A row older (by PIM source time) than the stored price is ignored; a row that changes
    nothing is applied but owes no channel anything; unknown SKUs refuse the whole request.
    """
    now = timezone.now()
    latest: dict[str, PriceRow] = {}
    for row in rows:  # the same SKU twice: the later source time (then the later row) wins
        held = latest.get(row.sku)
        if held is None or (row.changed_at or now) >= (held.changed_at or now):
            latest[row.sku] = row
    stored = {
        sku: (variant_id, price, changed_at)
        for sku, variant_id, price, changed_at in Variant.objects.filter(sku__in=list(latest))
        .order_by("pk")
        .select_for_update()
        .values_list("sku", "pk", "price", "price_changed_at")
    }
    unknown = {index: {"sku": f"unknown SKU {row.sku!r}"} for index, row in enumerate(rows) if row.sku not in stored}
    if unknown:
        raise BulkRowsError(unknown)

    updates: list[tuple[int, Decimal, datetime]] = []
    changed_ids: list[int] = []
    ignored = len(rows) - len(latest)
    for sku, row in latest.items():
        variant_id, price, stored_changed_at = stored[sku]
        changed_at = row.changed_at or now
        if stored_changed_at is not None and changed_at < stored_changed_at:
            ignored += 1
            continue
        updates.append((variant_id, row.price, changed_at))
        if price != row.price:
            changed_ids.append(variant_id)
    _write_prices(updates, now)
    changes_record(variant_ids=changed_ids, aspect="price", origin=origin)
    return BulkPriceResult(applied=len(updates), ignored=ignored, changed=len(changed_ids))


def _write_prices(updates: list[tuple[int, Decimal, datetime]], now: datetime) -> None:
    if not updates:
        return
    if connection.vendor == "postgresql":
        # One statement for any number of rows: unnest arrays into a join.
        ids, prices, times = zip(*updates)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE inventory_variant AS v
                   SET price = d.price, price_changed_at = d.changed_at, updated_at = %s
                  FROM unnest(%s::bigint[], %s::numeric[], %s::timestamptz[]) AS d(id, price, changed_at)
                 WHERE v.id = d.id
                """,
                [now, list(ids), list(prices), list(times)],
            )
        return
    variants = [Variant(pk=pk, price=price, price_changed_at=changed_at, updated_at=now) for pk, price, changed_at in updates]
    with suppressed():
        Variant.objects.bulk_update(variants, ["price", "price_changed_at", "updated_at"], batch_size=500)
