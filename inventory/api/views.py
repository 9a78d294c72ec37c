"""Thin views: validate with an input serializer, call a service, answer with an output one."""
from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from syncsvc.openapi import Error

from .. import services
from ..errors import BulkRowsError, InventoryError
from ..models import Product, Variant
from . import serializers as s
from .price_rows import parse_price_rows

PIM = ("pim",)


def _validated(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ProductViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    queryset = Product.objects.prefetch_related("variants")
    serializer_class = s.ProductOutput
    lookup_field = "handle"
    write_roles = PIM
    filterset_fields = ["handle"]

    @extend_schema(request=s.ProductCreateInput, responses={201: s.ProductOutput})
    def create(self, request):
        data = _validated(s.ProductCreateInput, request.data)
        product = services.product_create(**data)
        return Response(s.ProductOutput(self.get_queryset().get(pk=product.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProductUpdateInput, responses={200: s.ProductOutput})
    def partial_update(self, request, handle=None):
        product = self.get_object()
        data = dict(_validated(s.ProductUpdateInput, request.data))
        variants = data.pop("variants", None)
        services.product_update(product=product, fields=data, variants=variants)
        return Response(s.ProductOutput(self.get_queryset().get(pk=product.pk)).data)

    @extend_schema(responses={204: None, 409: Error})
    def destroy(self, request, *args, **kwargs):
        """A product with stock movements in the ledger is kept: 409."""
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.product_delete(product=instance)


class VariantView(APIView):
    write_roles = PIM

    @extend_schema(responses={200: s.VariantOutput})
    def get(self, request, sku):
        return Response(s.VariantOutput(get_object_or_404(Variant, sku=sku)).data)

    @extend_schema(request=s.VariantUpdateInput, responses={200: s.VariantOutput})
    def patch(self, request, sku):
        variant = get_object_or_404(Variant, sku=sku)
        data = dict(_validated(s.VariantUpdateInput, request.data))
        urgent = data.pop("urgent", False)
        if not data:
            raise ValidationError({"non_field_errors": ["nothing to update"]})
        changed_at = data.pop("price_changed_at", None)
        variant, applied = services.variant_update(
            variant=variant, fields=data, price_changed_at=changed_at, urgent=urgent
        )
        return Response({**s.VariantOutput(variant).data, "applied": applied})


class PricesBulkView(APIView):
    write_roles = PIM
    max_rows = 10_000

    @extend_schema(request=s.PriceRowInput(many=True), responses={200: dict})
    def post(self, request):
        if not isinstance(request.data, list):
            raise ValidationError({"non_field_errors": ["expected a JSON list of {sku, price, changed_at?, urgent?}"]})
        if len(request.data) > self.max_rows:
            raise ValidationError({"non_field_errors": [f"at most {self.max_rows} rows per request, got {len(request.data)}"]})
        result = services.prices_bulk_set(rows=parse_price_rows(request.data))
        return Response({"applied": result.applied, "ignored": result.ignored})


def _movements(request, input_class, service):
    """One movement or a list of them, in one transaction: all apply or none."""
    many = isinstance(request.data, list)
    rows = _validated(input_class, request.data, many=many)
    results = []
    with transaction.atomic():
        for index, row in enumerate(rows if many else [rows]):
            try:
                results.append(service(**row))
            except InventoryError as exc:
                if not many:
                    raise
                raise BulkRowsError({index: {exc.field or "non_field_errors": exc.message}}) from exc
    created_any = any(created for _, created in results)
    body = [dict(s.MovementOutput(m).data, created=created) for m, created in results]
    return Response(body if many else body[0], status=status.HTTP_201_CREATED if created_any else status.HTTP_200_OK)


class AdjustmentsView(APIView):
    write_roles = PIM

    @extend_schema(request=s.AdjustmentInput, responses={200: s.MovementOutput, 201: s.MovementOutput, 404: Error})
    def post(self, request):
        return _movements(request, s.AdjustmentInput, services.stock_adjust)


class CountsView(APIView):
    write_roles = PIM

    @extend_schema(request=s.CountInput, responses={200: s.MovementOutput, 201: s.MovementOutput, 404: Error})
    def post(self, request):
        return _movements(request, s.CountInput, services.stock_count)
