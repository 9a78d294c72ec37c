"""GET /api/v1/alerts/: open and recent alerts, each with its channel, what tripped it and
when it cleared. Open ones first, then the most recent."""
from __future__ import annotations

import django_filters
from django.db.models import F, Q
from rest_framework import generics, serializers

from ..models import Alert
from .filters import UtcIsoDateTimeFilter

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]


class AlertFilter(django_filters.FilterSet):
    open = django_filters.ChoiceFilter(choices=BOOLEAN_CHOICES, method="filter_open", help_text="true: open only; false: cleared only.")
    channel = django_filters.CharFilter(method="filter_channel", help_text="Channel id or name.")
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)
    since = UtcIsoDateTimeFilter(
        method="filter_since", help_text="Alerts open at some time since then (still open, or cleared since)."
    )

    class Meta:
        model = Alert
        fields = ("open", "channel", "kind", "since")

    def filter_open(self, queryset, name, value):
        return queryset.filter(cleared_at__isnull=value == "true")

    def filter_channel(self, queryset, name, value):
        if value.isascii() and value.isdigit():
            return queryset.filter(channel_id=int(value))
        return queryset.filter(channel__name=value)

    def filter_since(self, queryset, name, value):
        return queryset.filter(Q(cleared_at__isnull=True) | Q(cleared_at__gte=value))


class AlertChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class AlertSerializer(serializers.ModelSerializer):
    channel = AlertChannelSerializer()
    open = serializers.BooleanField(source="is_open")

    class Meta:
        model = Alert
        fields = (
            "id", "kind", "channel", "open", "detail", "data", "opened_at", "last_seen_at", "cleared_at",
            "cleared_detail", "notified_at", "incident",
        )


class AlertListView(generics.ListAPIView):
    """Open and recent alerts (dead_channel, degraded_channel, drift, inbound_silence)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    queryset = Alert.objects.select_related("channel").order_by(F("cleared_at").desc(nulls_first=True), "-opened_at", "-id")
