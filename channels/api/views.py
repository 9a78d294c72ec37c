from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import Variant
from inventory.selectors import stock_totals

from ..models import Channel, SyncAttempt
from ..selectors import channels_status
from .filters import SyncAttemptFilter
from .serializers import ChannelSerializer, SyncAttemptSerializer

OPS = ("ops",)


class ChannelViewSet(viewsets.ModelViewSet):
    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    write_roles = OPS
    filterset_fields = ["kind", "enabled", "mode"]


class StatusView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response({"channels": channels_status()})


class SyncLogPagination(CursorPagination):
    """Keyset pagination: as fast on page 10,000 as on page 1."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class SyncLogView(generics.ListAPIView):
    queryset = SyncAttempt.objects.select_related("channel")
    serializer_class = SyncAttemptSerializer
    filterset_class = SyncAttemptFilter
    pagination_class = SyncLogPagination


class InventoryView(APIView):
    """Stock of a SKU and what each channel is shown of it."""

    @extend_schema(responses={200: dict})
    def get(self, request, sku):
        get_object_or_404(Variant, sku=sku)
        on_hand, reserved = stock_totals(sku=sku)
        sellable = max(0, on_hand - reserved)
        return Response(
            {
                "sku": sku,
                "on_hand": on_hand,
                "reserved": reserved,
                "available": sellable,
                "channels": {channel.name: channel.shown_available(sellable) for channel in Channel.objects.all()},
            }
        )
