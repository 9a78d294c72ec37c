"""Reads of the catalog and stock for other apps (the channels read through here)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from .models import StockLevel, Variant


@dataclass(frozen=True)
class VariantSnapshot:
    """What a variant is now: everything a channel may be shown about it."""

    variant_id: int
    sku: str
    handle: str
    title: str
    description: str
    price: Decimal
    compare_at_price: Decimal | None
    attributes: dict = field(default_factory=dict)
    on_hand: int = 0
    reserved: int = 0

    @property
    def sellable(self) -> int:
        return max(0, self.on_hand - self.reserved)


def variants_snapshot(*, variant_ids: Iterable[int]) -> dict[int, VariantSnapshot]:
    """Current state of these variants (absent ones are left out: deleted meanwhile)."""
    ids = list(variant_ids)
    stock = stock_by_variant(variant_ids=ids)
    rows = Variant.objects.filter(pk__in=ids).values_list(
        "pk", "sku", "product__handle", "product__title", "product__description",
        "price", "compare_at_price", "attributes",
    )
    return {
        pk: VariantSnapshot(
            variant_id=pk, sku=sku, handle=handle, title=title, description=description,
            price=price, compare_at_price=compare_at, attributes=attributes or {},
            on_hand=stock.get(pk, (0, 0))[0], reserved=stock.get(pk, (0, 0))[1],
        )
        for pk, sku, handle, title, description, price, compare_at, attributes in rows
    }


def stock_by_variant(*, variant_ids: Iterable[int], locations: Iterable[str] | None = None) -> dict[int, tuple[int, int]]:
    """(on_hand, reserved) per variant, summed over `locations` (all when None)."""
    levels = StockLevel.objects.filter(variant_id__in=list(variant_ids))
    if locations is not None:
        levels = levels.filter(location__in=list(locations))
    return {
        row["variant_id"]: (row["on_hand"] or 0, row["reserved"] or 0)
        for row in levels.values("variant_id").annotate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    }


def stock_totals(*, sku: str) -> tuple[int, int] | None:
    """(on_hand, reserved) summed over locations, or None for an unknown SKU."""
    variant = Variant.objects.filter(sku=sku).only("pk").first()
    if variant is None:
        return None
    totals = StockLevel.objects.filter(variant=variant).aggregate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    return totals["on_hand"] or 0, totals["reserved"] or 0
