"""Nightly catalog refresh, for operators:

- `POST /channels/{id}/catalog-refresh/` -> `202 {"refresh": id, ...progress}` (409 when the
  channel is disabled, cannot take content, or is refreshing already); ops role;
- `GET /channels/{id}/catalog-refresh/` -> the channel's refreshes, newest first, with their
  progress, and the channel's schedule;
- `GET /channels/{id}/catalog-refresh/{refresh}/` -> progress (done/total, ETA, chunks) and the
  chunks (`?status=`, `limit`, `offset`);
- `POST /channels/{id}/catalog-refresh/{refresh}/cancel/` -> `200` (409 when it finished).
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from syncsvc.openapi import Error

from ..models import CatalogRefresh, CatalogRefreshChunk, Channel
from ..services.catalog_refresh import (
    RefreshError,
    catalog_refresh_cancel,
    catalog_refresh_progress,
    catalog_refresh_start,
)
from ..services.refresh_schedule import refresh_schedule_describe
from .params import choice_param, int_param, offset_page
from .refusals import refusal_response

OPS = ("ops",)
CHUNKS_DEFAULT = 100
CHUNKS_MAX = 1000


class ChunkSerializer(serializers.ModelSerializer):
    class Meta:
        model = CatalogRefreshChunk
        fields = ("seq", "first_variant_id", "last_variant_id", "size", "status", "remote", "starts", "polls", "ok",
                  "failed", "failures", "error", "started_at", "finished_at", "next_poll_at")


class CatalogRefreshView(APIView):
    write_roles = OPS

    @extend_schema(request=None, responses={202: dict, 409: Error})
    def post(self, request, pk):
        """Refresh the channel's whole catalog content now through its bulk path."""
        channel = get_object_or_404(Channel, pk=pk)
        if request.data:
            raise ValidationError({name: ["unknown field: the request takes no body"] for name in request.data})
        try:
            refresh = catalog_refresh_start(channel=channel, trigger=CatalogRefresh.Trigger.MANUAL,
                                            requested_by=request.user.get_username())
        except RefreshError as error:
            return refusal_response(error)
        return Response(catalog_refresh_progress(refresh), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: dict})
    def get(self, request, pk):
        """The channel's refreshes, newest first, with progress; and its schedule."""
        channel = get_object_or_404(Channel, pk=pk)
        limit = int_param(request, "limit", 20, 1, 100)
        refreshes = CatalogRefresh.objects.filter(channel=channel).order_by("-created_at")[:limit]
        return Response({
            "schedule": refresh_schedule_describe(channel),
            "results": [catalog_refresh_progress(refresh) for refresh in refreshes],
        })


class CatalogRefreshDetailView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, pk, refresh_id):
        """Progress and the chunks, `?status=` to filter them."""
        refresh = get_object_or_404(CatalogRefresh, pk=refresh_id, channel_id=pk)
        chunks = choice_param(request, "status", CatalogRefreshChunk.objects.filter(refresh=refresh).order_by("seq"),
                              field="status", choices=CatalogRefreshChunk.Status.values)
        page, offset, more = offset_page(request, chunks, default=CHUNKS_DEFAULT, maximum=CHUNKS_MAX)
        return Response({
            **catalog_refresh_progress(refresh),
            "chunk_list": ChunkSerializer(page, many=True).data,
            "chunks_offset": offset,
            "chunks_more": more,
        })


class CatalogRefreshCancelView(APIView):
    write_roles = OPS

    @extend_schema(request=None, responses={200: dict, 409: Error})
    def post(self, request, pk, refresh_id):
        """Stop the refresh: no chunk starts after this."""
        refresh = get_object_or_404(CatalogRefresh, pk=refresh_id, channel_id=pk)
        if not catalog_refresh_cancel(refresh=refresh):
            message = f"the refresh is {refresh.status}: nothing to cancel"
            return Response({"detail": message, "errors": {"refresh": [message]}}, status=status.HTTP_409_CONFLICT)
        refresh.refresh_from_db()
        return Response(catalog_refresh_progress(refresh))
