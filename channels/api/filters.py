import django_filters

from ..models import SyncAttempt


class SyncAttemptFilter(django_filters.FilterSet):
    channel = django_filters.CharFilter(method="filter_channel", help_text="Channel id or name.")
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")
    status = django_filters.ChoiceFilter(choices=SyncAttempt.Status.choices)
    event_type = django_filters.ChoiceFilter(choices=[("price", "price"), ("inventory", "inventory"), ("content", "content")])

    class Meta:
        model = SyncAttempt
        fields = ["channel", "sku", "status", "event_type", "since", "until"]

    def filter_channel(self, queryset, name, value):
        if value.isdigit():
            return queryset.filter(channel_id=int(value))
        return queryset.filter(channel__name=value)
