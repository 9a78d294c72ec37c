from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from ..models import Channel, SyncAttempt

FAILED = [SyncAttempt.Status.FAILURE, SyncAttempt.Status.THROTTLED]


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601, as UTC: PostgreSQL refuses offsets beyond 15:59 that Python accepts (a 500
    otherwise), and a time whose UTC is outside the years 1-9999 is a 400."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class SyncAttemptForm(forms.Form):
    """Checks the sync log's query before it runs: a channel that does not exist and a time
    range that ends before it starts are 400s naming the parameter, not empty pages."""

    def clean_channel(self):
        value = (self.cleaned_data.get("channel") or "").strip()
        if not value:
            return None
        channels = Channel.objects.filter(pk=int(value)) if value.isascii() and value.isdigit() else Channel.objects.filter(name=value)
        channel_id = channels.values_list("pk", flat=True).first()
        if channel_id is None:
            raise forms.ValidationError(f"No channel with id or name {value!r}.")
        return channel_id

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until <= since:
            self.add_error("until", "Must be later than since.")
        return cleaned


class SyncAttemptFilter(django_filters.FilterSet):
    channel = django_filters.CharFilter(method="filter_channel", help_text="Channel id or name.")
    sku = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=SyncAttempt.Status.choices)
    event_type = django_filters.ChoiceFilter(choices=[("price", "price"), ("inventory", "inventory"), ("content", "content")])
    error_code = django_filters.CharFilter(help_text="The channel's error code, e.g. http_503.")
    resolved = django_filters.ChoiceFilter(
        method="filter_resolved", choices=[("true", "true"), ("false", "false")],
        help_text="Failed or throttled attempts that a later success resolved (true) or not yet (false).",
    )
    since = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="gte", help_text="ISO 8601, inclusive.")
    until = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="lt", help_text="ISO 8601, exclusive.")

    class Meta:
        model = SyncAttempt
        form = SyncAttemptForm
        fields = ["channel", "sku", "status", "event_type", "error_code", "resolved", "since", "until"]

    def filter_channel(self, queryset, name, value):
        # The form resolved a name to its id: the query then filters on the indexed column
        # instead of joining channels on their names.
        return queryset.filter(channel_id=value) if value is not None else queryset

    def filter_resolved(self, queryset, name, value):
        return queryset.filter(status__in=FAILED, resolved_at__isnull=value != "true")
