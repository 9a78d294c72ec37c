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
from .sqlarrays import int_list, text_array, time_array


@dataclass(frozen=True)
class PriceRow:
    sku: str
    price: Decimal
    changed_at: datetime | None = None
    urgent: bool = False  # skips the channels' threshold rules and minimum intervals


@dataclass(frozen=True)
class BulkPriceResult:
    applied: int
    ignored: int
    changed: int


@dataclass(frozen=True)
class _Written:
    """What the write did: the SKUs it did not find, the variants whose price moved, how many
    rows were applied and how many were older than the stored price."""

    unknown: set[str]
    changed_ids: list[int]
    applied: int
    stale: int


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
    if connection.vendor == "postgresql":
        written = _write_postgres(list(latest.values()), now)
    else:
        written = _write_generic(list(latest.values()), now)
    if written.unknown:  # raising rolls the transaction back: nothing is written
        raise BulkRowsError(
            {index: {"sku": f"unknown SKU {row.sku!r}"} for index, row in enumerate(rows) if row.sku in written.unknown}
        )
    urgent_skus = {row.sku for row in latest.values() if row.urgent}
    urgent_ids = set(Variant.objects.filter(sku__in=urgent_skus).values_list("pk", flat=True)) if urgent_skus else set()
    changes_record(variant_ids=[pk for pk in written.changed_ids if pk not in urgent_ids], aspect="price", origin=origin)
    changes_record(variant_ids=[pk for pk in written.changed_ids if pk in urgent_ids], aspect="price", origin=origin,
                   urgent=True)
    ignored = len(rows) - len(latest) + written.stale
    return BulkPriceResult(applied=written.applied, ignored=ignored, changed=len(written.changed_ids))


# One statement locks the rows (in id order, so concurrent writers cannot deadlock), compares
# each with its stored price and source time, and updates the rows that are not older. The
# The rows are locked FOR NO KEY UPDATE (no key changes): a flush committing listing and
# attempt rows checks its foreign keys with KEY SHARE on the same variants, which must not wait
# for the import (it deadlocked with the import waiting for that flush's marks).
# UPDATE only runs when every SKU was found: a refused request writes nothing even before its
# rollback. Only a summary comes back (no per-row decoding in Python).
_WRITE_SQL = """
WITH d AS (
    SELECT * FROM unnest(%s::text[], %s::numeric[], %s::timestamptz[]) AS d(sku, price, changed_at)
), locked AS (
    SELECT v.id, v.sku, d.price, d.changed_at,
           v.price IS DISTINCT FROM d.price AS moved,
           v.price_changed_at IS NOT NULL AND d.changed_at < v.price_changed_at AS stale
      FROM inventory_variant AS v JOIN d ON d.sku = v.sku
     ORDER BY v.id
       FOR NO KEY UPDATE OF v
), written AS (
    UPDATE inventory_variant AS v
       SET price = l.price, price_changed_at = l.changed_at, updated_at = %s
      FROM locked AS l
     WHERE v.id = l.id AND NOT l.stale AND (SELECT count(*) FROM locked) = %s
)
SELECT (SELECT count(*) FROM locked),
       (SELECT count(*) FROM locked WHERE stale),
       (SELECT string_agg(id::text, ',' ORDER BY id) FROM locked WHERE moved AND NOT stale),
       CASE WHEN (SELECT count(*) FROM locked) < %s
            THEN ARRAY(SELECT d.sku FROM d EXCEPT SELECT l.sku FROM locked AS l) END
"""


def _write_postgres(rows: list[PriceRow], now: datetime) -> _Written:
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE_SQL,
            [
                text_array(row.sku for row in rows),
                "{" + ",".join(str(row.price) for row in rows) + "}",
                time_array(row.changed_at or now for row in rows),
                now,
                len(rows),
                len(rows),
            ],
        )
        found, stale, moved, unknown = cursor.fetchone()
    return _Written(unknown=set(unknown or ()), changed_ids=int_list(moved), applied=found - stale, stale=stale)


def _write_generic(rows: list[PriceRow], now: datetime) -> _Written:
    """SQLite (the embedded default): it serializes writers, so a read then a bulk update is
    enough."""
    stored = {
        sku: (variant_id, price, changed_at)
        for sku, variant_id, price, changed_at in Variant.objects.filter(sku__in=[row.sku for row in rows])
        .order_by("pk")
        .select_for_update(no_key=True)
        .values_list("sku", "pk", "price", "price_changed_at")
    }
    unknown = {row.sku for row in rows if row.sku not in stored}
    if unknown:
        return _Written(unknown=unknown, changed_ids=[], applied=0, stale=0)
    updates: list[Variant] = []
    changed_ids: list[int] = []
    stale = 0
    for row in rows:
        variant_id, price, stored_changed_at = stored[row.sku]
        changed_at = row.changed_at or now
        if stored_changed_at is not None and changed_at < stored_changed_at:
            stale += 1
            continue
        updates.append(Variant(pk=variant_id, price=row.price, price_changed_at=changed_at, updated_at=now))
        if price != row.price:
            changed_ids.append(variant_id)
    with suppressed():
        Variant.objects.bulk_update(updates, ["price", "price_changed_at", "updated_at"], batch_size=500)
    return _Written(unknown=set(), changed_ids=sorted(changed_ids), applied=len(updates), stale=stale)
