"""Catalog, prices, the stock ledger and channel-agnostic change records."""
from __future__ import annotations

from django.db import models


class Product(models.Model):
    handle = models.SlugField(max_length=255, unique=True)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["handle"]

    def __str__(self) -> str:
        return self.handle


class Variant(models.Model):
    product = models.ForeignKey(Product, related_name="variants", on_delete=models.CASCADE)
    sku = models.CharField(max_length=100, unique=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    barcode = models.CharField(max_length=64, blank=True, default="")
    # When the PIM made the current price (source time): an older change arriving late is ignored.
    price_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return self.sku


class StockLevel(models.Model):
    """Current stock of a variant at a location; changed only with a StockMovement."""

    variant = models.ForeignKey(Variant, related_name="stock_levels", on_delete=models.CASCADE)
    location = models.CharField(max_length=64, default="default")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["variant", "location"], name="stocklevel_variant_location_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}@{self.location}: {self.on_hand}"


class StockMovement(models.Model):
    """An append-only ledger row. `reference` is unique per `source`, so a retried call or a
    redelivered webhook is applied once."""

    class Reason(models.TextChoices):
        RECEIPT = "receipt"
        SALE = "sale"
        RETURN = "return"
        CORRECTION = "correction"
        COUNT = "count"
        RESERVATION = "reservation"
        RELEASE = "release"

    variant = models.ForeignKey(Variant, related_name="movements", on_delete=models.PROTECT)
    location = models.CharField(max_length=64, default="default")
    delta = models.IntegerField()
    # Reservations and releases move `reserved`; everything else moves `on_hand`.
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(max_length=100, default="pim")
    reference = models.CharField(max_length=255)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "reference"], name="movement_source_reference_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.delta:+d} ({self.source}:{self.reference})"


class Aspect(models.TextChoices):
    PRICE = "price"
    INVENTORY = "inventory"
    CONTENT = "content"


class Change(models.Model):
    """One recorded change to what channels must be shown, written in the same transaction as
    the data. Its id is the version that pending sync marks carry."""

    variant = models.ForeignKey(Variant, related_name="+", on_delete=models.CASCADE, db_index=False)
    aspect = models.CharField(max_length=16, choices=Aspect.choices)
    origin = models.CharField(max_length=32, default="api")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["variant", "aspect"], name="change_variant_aspect_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.aspect} v{self.variant_id}"
