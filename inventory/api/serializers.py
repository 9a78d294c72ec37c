"""Explicit input and output serializers; no business logic here."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from ..models import Product, StockMovement, Variant

_MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}


class StrictBooleanField(serializers.BooleanField):
    """JSON `true` or `false` only: a flag that changes what channels see is not guessed from
    "yes" or 1."""

    default_error_messages = {"invalid": "Must be a JSON boolean (true or false)."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


def urgent_field():
    return StrictBooleanField(
        required=False, default=False,
        help_text="Skip the channels' threshold rules and minimum intervals: sent at once.",
    )


class VariantOutput(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["sku", "price", "compare_at_price", "attributes", "barcode", "price_changed_at"]


class ProductOutput(serializers.ModelSerializer):
    variants = VariantOutput(many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["handle", "title", "description", "attributes", "variants", "updated_at"]


class VariantInput(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    price = serializers.DecimalField(**_MONEY)
    compare_at_price = serializers.DecimalField(**_MONEY, required=False, allow_null=True)
    attributes = serializers.DictField(required=False, default=dict)
    barcode = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class ProductCreateInput(serializers.Serializer):
    handle = serializers.SlugField(max_length=255)
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    attributes = serializers.DictField(required=False, default=dict)
    variants = VariantInput(many=True, required=False, default=list)

    def validate_handle(self, value: str) -> str:
        if Product.objects.filter(handle=value).exists():
            raise serializers.ValidationError(f"a product with handle {value!r} exists")
        return value

    def validate_variants(self, rows: list[dict]) -> list[dict]:
        skus = [row["sku"] for row in rows]
        duplicated = sorted({sku for sku in skus if skus.count(sku) > 1})
        if duplicated:
            raise serializers.ValidationError(f"SKU repeated in the request: {', '.join(duplicated)}")
        taken = sorted(Variant.objects.filter(sku__in=skus).values_list("sku", flat=True))
        if taken:
            raise serializers.ValidationError(f"SKU already exists: {', '.join(taken)}")
        return rows


class ProductUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    attributes = serializers.DictField(required=False)
    variants = VariantInput(many=True, required=False)


class VariantUpdateInput(serializers.Serializer):
    price = serializers.DecimalField(**_MONEY, required=False)
    compare_at_price = serializers.DecimalField(**_MONEY, required=False, allow_null=True)
    attributes = serializers.DictField(required=False)
    barcode = serializers.CharField(max_length=64, required=False, allow_blank=True)
    price_changed_at = serializers.DateTimeField(required=False)
    urgent = urgent_field()


class PriceRowInput(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    price = serializers.DecimalField(**_MONEY)
    changed_at = serializers.DateTimeField(required=False)
    urgent = urgent_field()


class AdjustmentInput(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    delta = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    reason = serializers.ChoiceField(choices=StockMovement.Reason.choices)
    reference = serializers.CharField(max_length=255)
    location = serializers.CharField(max_length=64, required=False, default="default")
    source = serializers.CharField(max_length=100, required=False, default="pim")
    urgent = urgent_field()


class CountInput(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    on_hand = serializers.IntegerField(min_value=0, max_value=100_000_000)
    reference = serializers.CharField(max_length=255)
    location = serializers.CharField(max_length=64, required=False, default="default")
    source = serializers.CharField(max_length=100, required=False, default="pim")
    urgent = urgent_field()


class MovementOutput(serializers.ModelSerializer):
    sku = serializers.CharField(source="variant.sku")

    class Meta:
        model = StockMovement
        fields = ["id", "sku", "location", "delta", "reason", "source", "reference", "on_hand_after", "reserved_after", "created_at"]
