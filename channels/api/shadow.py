"""`GET /channels/{id}/shadow-diff/?sku=A&sku=B` (or `sku=A,B`; none: the catalog by SKU,
paginated with `limit`/`offset`): per SKU what a shadow channel would be sent now, what the
store shows (read back, never written), and the fields that differ."""
from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import Variant
from syncsvc.openapi import Error

from ..models import Channel
from ..services.live_values import ReadFailed, ReadThrottled, can_read_back
from ..services.shadow import shadow_diff


class ShadowDiffPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 250


class ShadowDiffView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT, 409: Error, 429: Error, 502: Error})
    def get(self, request, pk):
        channel = get_object_or_404(Channel, pk=pk)
        unknown = set(request.query_params) - {"sku", "limit", "offset"}
        if unknown:
            raise ValidationError({name: ["unknown parameter"] for name in sorted(unknown)})
        if not can_read_back(channel):
            return Response({"detail": f"a {channel.kind} channel cannot be read back",
                             "errors": {"channel": ["cannot be read back"]}}, status=409)
        skus = [s for value in request.query_params.getlist("sku") for s in value.split(",") if s.strip()]
        candidates = Variant.objects.order_by("sku").values_list("sku", flat=True)
        if skus:
            candidates = candidates.filter(sku__in=[s.strip() for s in skus])
        paginator = ShadowDiffPagination()
        page = paginator.paginate_queryset(candidates, request, view=self)
        try:
            rows = shadow_diff(channel=channel, skus=list(page))
        except ReadThrottled as throttled:
            return Response({"detail": str(throttled), "errors": {}}, status=429,
                            headers={"Retry-After": str(max(1, round(throttled.retry_after)))})
        except ReadFailed as failed:
            return Response({"detail": f"the channel could not be read: {failed}", "errors": {}}, status=502)
        return paginator.get_paginated_response([{**asdict(row), "mode": channel.mode} for row in rows])
