"""Forced resync, reconciliation and incidents, for operators:

- `POST /channels/{id}/resync/` `{"skus": [...]}` or `{"all": true}` (optionally `"aspects"`)
  -> `202 {"job": id, ...progress}`; `GET` lists the channel's jobs;
- `GET /channels/{id}/resync/{job}/?state=&limit=&offset=` -> progress and per-SKU outcomes;
- `POST /channels/{id}/reconcile/` -> `202`: read the next batch of live values now;
- `GET /incidents/?open=true`.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from syncsvc.openapi import Error

from ..models import Channel, Incident, ResyncItem, ResyncJob
from ..services.live_values import can_read_back
from ..services.resync import ResyncError, resync_progress, resync_start
from ..tasks import reconcile_channel_task
from .params import choice_param, int_param, offset_page
from .refusals import refusal_response

OPS = ("ops",)
ITEMS_DEFAULT = 100
ITEMS_MAX = 1000


class ResyncRequestSerializer(serializers.Serializer):
    skus = serializers.ListField(child=serializers.CharField(max_length=100), required=False, allow_empty=True)
    all = serializers.BooleanField(required=False, default=False)
    aspects = serializers.ListField(child=serializers.CharField(max_length=16), required=False, allow_empty=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

    def validate(self, data):
        if data.get("all") and "skus" in data:
            raise ValidationError({"skus": ["give either a list of SKUs or all: true, not both"]})
        if not data.get("all") and "skus" not in data:
            raise ValidationError({"skus": ["a list of SKUs is required (or all: true)"]})
        return data


class ResyncItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ResyncItem
        fields = ("sku", "state", "detail", "updated_at")


class IncidentSerializer(serializers.ModelSerializer):
    channels = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    resync_jobs = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    alerts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = ("id", "title", "cause", "channels", "skus", "detected_at", "recovered_at", "resync_jobs", "alerts")


class ResyncView(APIView):
    write_roles = OPS

    @extend_schema(request=ResyncRequestSerializer, responses={202: dict})
    def post(self, request, pk):
        """Resync these SKUs (or all) on the channel: sent at its rate, then read back."""
        channel = get_object_or_404(Channel, pk=pk)
        body = ResyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            job = resync_start(
                channel=channel, skus=data.get("skus"), all_skus=data["all"], aspects=data.get("aspects"),
                requested_by=request.user.get_username(), reason=data["reason"] or "requested through the API",
            )
        except ResyncError as error:
            return refusal_response(error)
        return Response(resync_progress(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: dict})
    def get(self, request, pk):
        """The channel's resync jobs, newest first, with their progress."""
        channel = get_object_or_404(Channel, pk=pk)
        jobs = ResyncJob.objects.filter(channel=channel).select_related("channel").order_by("-created_at")
        limit = int_param(request, "limit", 20, 1, 100)
        return Response({"results": [resync_progress(job) for job in jobs[:limit]]})


class ResyncJobView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, pk, job_id):
        """Progress (done/total, ETA) and per-SKU outcomes, `?state=` to filter them."""
        job = get_object_or_404(ResyncJob.objects.select_related("channel"), pk=job_id, channel_id=pk)
        items = choice_param(request, "state", ResyncItem.objects.filter(job=job).order_by("pk"),
                             field="state", choices=ResyncItem.State.values)
        page, offset, more = offset_page(request, items, default=ITEMS_DEFAULT, maximum=ITEMS_MAX)
        return Response({
            **resync_progress(job),  # its "counts" are of every item, whatever `?state=` shows
            "items": ResyncItemSerializer(page, many=True).data,
            "items_offset": offset,
            "items_more": more,
        })


class ReconcileNowView(APIView):
    write_roles = OPS

    @extend_schema(request=None, responses={202: dict, 409: Error})
    def post(self, request, pk):
        """Read the channel's next batch of live values now (beyond its paced cycle)."""
        channel = get_object_or_404(Channel, pk=pk)
        if not channel.enabled or not can_read_back(channel):
            message = "disabled" if not channel.enabled else f"a {channel.kind} channel cannot be read back"
            return Response({"detail": f"{channel.name}: {message}", "errors": {"channel": [message]}},
                            status=status.HTTP_409_CONFLICT)
        reconcile_channel_task.delay(channel.pk, force=True)
        return Response({"channel": channel.pk, "queued": True}, status=status.HTTP_202_ACCEPTED)


class IncidentList(generics.ListAPIView):
    serializer_class = IncidentSerializer

    def get_queryset(self):
        incidents = Incident.objects.prefetch_related("channels", "resync_jobs", "alerts").order_by("-detected_at")
        opened = self.request.query_params.get("open")
        if opened is not None:
            if opened not in ("true", "false"):
                raise ValidationError({"open": ["true or false"]})
            incidents = incidents.filter(recovered_at__isnull=opened == "true")
        return incidents
