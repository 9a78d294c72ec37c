"""Change capture.

`changes_recorded` is sent inside the transaction that made the changes, with the Change rows;
the `channels` app subscribes to it (so imports run one way: channels -> inventory).

ORM saves that bypass the services (the admin, a shell, a data fix) are captured by post_save
handlers that call the same service the API uses; services themselves save with capture
suppressed, so nothing is recorded twice.
"""
from __future__ import annotations

from django.db.models.signals import post_init, post_save
from django.dispatch import Signal

# Sent with `changes: list[inventory.models.Change]` and `urgent: bool` (the PIM flagged them
# as not to be held back), inside the writing transaction.
changes_recorded = Signal()

PRICE_FIELDS = ("price", "compare_at_price")
VARIANT_CONTENT_FIELDS = ("sku", "attributes", "barcode")
PRODUCT_CONTENT_FIELDS = ("handle", "title", "description", "attributes")


_UNLOADED = object()


def _snapshot(instance, fields):
    # Read loaded values only: touching a deferred field would load it (and re-enter post_init).
    return {name: instance.__dict__.get(name, _UNLOADED) for name in fields}


def _changed(before: dict, instance, fields) -> bool:
    return any(before.get(name, _UNLOADED) != instance.__dict__.get(name, _UNLOADED) for name in fields)


def _remember_variant(sender, instance, **kwargs):
    instance._captured = _snapshot(instance, PRICE_FIELDS + VARIANT_CONTENT_FIELDS)


def _remember_product(sender, instance, **kwargs):
    instance._captured = _snapshot(instance, PRODUCT_CONTENT_FIELDS)


def _variant_saved(sender, instance, created, raw=False, **kwargs):
    from . import capture, services

    if raw or capture.is_suppressed():
        instance._captured = _snapshot(instance, PRICE_FIELDS + VARIANT_CONTENT_FIELDS)
        return
    before = getattr(instance, "_captured", {})
    aspects = []
    if created or _changed(before, instance, PRICE_FIELDS):
        aspects.append("price")
    if created or _changed(before, instance, VARIANT_CONTENT_FIELDS):
        aspects.append("content")
    if created:
        aspects.append("inventory")
    for aspect in aspects:
        services.changes_record(variant_ids=[instance.pk], aspect=aspect, origin="orm")
    instance._captured = _snapshot(instance, PRICE_FIELDS + VARIANT_CONTENT_FIELDS)


def _product_saved(sender, instance, created, raw=False, **kwargs):
    from . import capture, services

    before = getattr(instance, "_captured", {})
    instance._captured = _snapshot(instance, PRODUCT_CONTENT_FIELDS)
    if raw or created or capture.is_suppressed():
        return  # a new product has no variants yet; they record their own creation
    if _changed(before, instance, PRODUCT_CONTENT_FIELDS):
        variant_ids = list(instance.variants.values_list("pk", flat=True))
        services.changes_record(variant_ids=variant_ids, aspect="content", origin="orm")


def _stock_level_saved(sender, instance, raw=False, **kwargs):
    from . import capture, services

    if raw or capture.is_suppressed():
        return
    services.changes_record(variant_ids=[instance.variant_id], aspect="inventory", origin="orm")


def connect() -> None:
    from .models import Product, StockLevel, Variant

    post_init.connect(_remember_variant, sender=Variant, dispatch_uid="inventory.remember_variant")
    post_init.connect(_remember_product, sender=Product, dispatch_uid="inventory.remember_product")
    post_save.connect(_variant_saved, sender=Variant, dispatch_uid="inventory.variant_saved")
    post_save.connect(_product_saved, sender=Product, dispatch_uid="inventory.product_saved")
    post_save.connect(_stock_level_saved, sender=StockLevel, dispatch_uid="inventory.stock_level_saved")
