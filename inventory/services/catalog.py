from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..capture import suppressed
from ..errors import Conflict
from ..models import Product, StockMovement, Variant
from .changes import changes_record

_VARIANT_FIELDS = ("price", "compare_at_price", "attributes", "barcode")


def _new_variant(product: Product, row: dict[str, Any]) -> Variant:
    return Variant(
        product=product,
        sku=row["sku"],
        price=row["price"],
        compare_at_price=row.get("compare_at_price"),
        attributes=row.get("attributes") or {},
        barcode=row.get("barcode") or "",
        price_changed_at=timezone.now(),
    )


@transaction.atomic
def product_create(
    *,
    handle: str,
    title: str,
    description: str = "",
    attributes: dict | None = None,
    variants: list[dict[str, Any]] = (),
    origin: str = "api",
) -> Product:
    """Create a product with its variants; every variant is owed to every channel."""
    with suppressed():
        product = Product.objects.create(
            handle=handle, title=title, description=description, attributes=attributes or {}
        )
        created = Variant.objects.bulk_create([_new_variant(product, row) for row in variants])
    ids = [variant.pk for variant in created]
    for aspect in ("price", "inventory", "content"):
        changes_record(variant_ids=ids, aspect=aspect, origin=origin)
    return product


@transaction.atomic
def product_update(
    *, product: Product, fields: dict[str, Any], variants: list[dict[str, Any]] | None = None, origin: str = "api"
) -> Product:
    """Update a product's content and, when given, its variants (matched by SKU; new SKUs are
    added; variants left out are kept)."""
    product = Product.objects.select_for_update(no_key=True).get(pk=product.pk)
    content_changed = False
    for name, value in fields.items():
        if getattr(product, name) != value:
            setattr(product, name, value)
            content_changed = True
    if content_changed:
        with suppressed():
            product.save()
        changes_record(
            variant_ids=product.variants.values_list("pk", flat=True), aspect="content", origin=origin
        )
    for row in variants or []:
        existing = Variant.objects.filter(sku=row["sku"]).first()
        if existing is None:
            variant = _new_variant(product, row)
            with suppressed():
                variant.save()
            for aspect in ("price", "inventory", "content"):
                changes_record(variant_ids=[variant.pk], aspect=aspect, origin=origin)
        elif existing.product_id != product.pk:
            raise Conflict(f"SKU {row['sku']} belongs to another product", field="variants")
        else:
            variant_update(variant=existing, fields={k: v for k, v in row.items() if k in _VARIANT_FIELDS}, origin=origin)
    return product


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product that has no stock history; one with a ledger must be kept."""
    if StockMovement.objects.filter(variant__product=product).exists():
        raise Conflict("the product has stock movements in the ledger and cannot be deleted")
    product.delete()


@transaction.atomic
def variant_update(
    *,
    variant: Variant,
    fields: dict[str, Any],
    price_changed_at: datetime | None = None,
    origin: str = "api",
    urgent: bool = False,
) -> tuple[Variant, bool]:
    """Update a variant. A price change whose source time is older than the stored one is
    ignored (returns `applied=False`): out-of-order deliveries cannot roll a price back.
    `urgent` changes skip the channels' threshold rules and minimum intervals."""
    variant = Variant.objects.select_for_update(no_key=True).get(pk=variant.pk)
    touches_price = any(name in fields for name in ("price", "compare_at_price"))
    if touches_price and price_changed_at and variant.price_changed_at and price_changed_at < variant.price_changed_at:
        return variant, False
    aspects = set()
    for name, value in fields.items():
        if isinstance(value, float):
            value = Decimal(str(value))
        if getattr(variant, name) != value:
            setattr(variant, name, value)
            aspects.add("price" if name in ("price", "compare_at_price") else "content")
    if touches_price:
        variant.price_changed_at = price_changed_at or timezone.now()
    with suppressed():
        variant.save()
    for aspect in sorted(aspects):
        changes_record(variant_ids=[variant.pk], aspect=aspect, origin=origin, urgent=urgent)
    return variant, True
