from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import Variant
from inventory.selectors import stock_totals

from ..models import Channel, Listing, SyncAttempt
from ..safety import shown_quantities
from ..selectors import channels_status
from .filters import SyncAttemptFilter
from .serializers import ChannelSerializer, ListingSerializer, SyncAttemptSerializer

OPS = ("ops",)


class ChannelViewSet(viewsets.ModelViewSet):
    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    write_roles = OPS
    filterset_fields = ["kind", "enabled", "mode"]

    @extend_schema(responses={200: ListingSerializer(many=True)})
    @action(detail=True, methods=["get"], filterset_fields=None)
    def listings(self, request, pk=None):
        """Per SKU: listed, unlisted or error on this channel, its ids there, last sync."""
        channel = self.get_object()
        listings = Listing.objects.filter(channel=channel).select_related("variant").order_by("variant__sku")
        status = request.query_params.get("status")
        if status:
            if status not in Listing.Status.values:
                raise ValidationError({"status": [f"one of {', '.join(Listing.Status.values)}"]})
            listings = listings.filter(status=status)
        page = self.paginate_queryset(listings)
        return self.get_paginated_response(ListingSerializer(page, many=True).data)


class StatusView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response({"channels": channels_status()})


class SyncLogPagination(CursorPagination):
    """Keyset pagination, newest first by time (the id breaks ties): every filter's index
    ends with `timestamp`, so page 10,000 is one index range scan, like page 1."""

    ordering = ("-timestamp", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot decode with a 404; it is bad input, named.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None


class SyncLogView(generics.ListAPIView):
    """The sync log: one row per attempt per channel per SKU, newest first."""

    queryset = SyncAttempt.objects.select_related("channel")
    serializer_class = SyncAttemptSerializer
    filterset_class = SyncAttemptFilter
    pagination_class = SyncLogPagination
    # A misspelt filter would otherwise be ignored and answer with the whole log.
    known_parameters = frozenset({*SyncAttemptFilter.base_filters, "cursor", "limit", "format"})

    def list(self, request, *args, **kwargs):
        unknown = sorted(set(request.query_params) - self.known_parameters)
        if unknown:
            raise ValidationError({name: [f"Unknown parameter; use one of {', '.join(sorted(self.known_parameters))}."]
                                   for name in unknown})
        return super().list(request, *args, **kwargs)


class InventoryView(APIView):
    """Stock of a SKU and what each channel is shown of it."""

    @extend_schema(responses={200: dict})
    def get(self, request, sku):
        variant = get_object_or_404(Variant, sku=sku)
        on_hand, reserved = stock_totals(sku=sku)
        sellable = max(0, on_hand - reserved)
        shown = {
            channel.name: shown_quantities(channel, {variant.pk: (on_hand, reserved)}, [variant.pk])[variant.pk]
            for channel in Channel.objects.all()
        }
        return Response(
            {
                "sku": sku,
                "on_hand": on_hand,
                "reserved": reserved,
                "available": sellable,
                "channels": shown,
            }
        )
