from django import forms
from django.contrib import admin

from inventory.admin import ReadOnlyAdmin
from syncsvc.admin_paging import EstimatedCountPaginator

from ..adapters.registry import ADAPTERS, adapter_class
from ..contracts.pins import pins_errors, pins_recorded
from ..models import Channel, InboundEvent, OrderLine, SyncAttempt, SyncMark
from . import dashboard  # noqa: F401  (the dashboard's views and the admin index's link to it)
from . import mapping  # noqa: F401  (attribute mappings, schema drift, shadow diff)
from .alerts import ChannelHealthInline  # also registers alerts, thresholds and circuits
from .refresh import catalog_refresh_now, catalog_refresh_schedule  # also registers catalog refreshes
from .resync import resync_all_skus, resync_failed_skus, resync_these_skus  # also registers resync jobs, drift, incidents
from .thresholds import ThresholdRuleInline  # also registers the list of every channel's rules


class ChannelForm(forms.ModelForm):
    """Credentials are entered as JSON and stored encrypted; the form never shows them."""

    base_url = forms.URLField(max_length=500, assume_scheme="https")
    new_credentials = forms.JSONField(
        required=False, label="Credentials", help_text="JSON object; leave empty to keep the stored ones."
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "base_url", "enabled", "mode", "safety_stock", "settings"]

    def clean_kind(self):
        kind = self.cleaned_data["kind"]
        if kind not in ADAPTERS:
            raise forms.ValidationError(f"no adapter for {kind!r} in this version")
        return kind

    def clean(self):
        data = super().clean()
        credentials = data.get("new_credentials")
        kind = data.get("kind")
        if credentials is not None and not isinstance(credentials, dict):
            self.add_error("new_credentials", "must be a JSON object")
        elif kind in ADAPTERS and (credentials or not self.instance.pk):
            for field, message in adapter_class(kind).validate_credentials(credentials or {}).items():
                self.add_error("new_credentials", f"{field}: {message}")
        if isinstance(data.get("settings"), dict):
            for field, message in pins_errors(data["settings"]).items():
                self.add_error("settings", f"{field}: {message}")
        return data

    def save(self, commit=True):
        previous = Channel.objects.filter(pk=self.instance.pk).values_list("settings", flat=True).first() if self.instance.pk else None
        channel = super().save(commit=False)
        # Event schema pins: recorded at creation, kept when an edit leaves them out (contracts/pins.py).
        channel.settings = pins_recorded(kind=channel.kind, settings=channel.settings or {}, previous=previous)
        if self.cleaned_data.get("new_credentials"):
            channel.credentials = self.cleaned_data["new_credentials"]
        if commit:
            channel.save()
        return channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "base_url", "enabled", "mode", "safety_stock"]
    list_filter = ["kind", "enabled", "mode"]
    readonly_fields = ["stored_credentials"]
    inlines = [ChannelHealthInline, ThresholdRuleInline]
    actions = [resync_failed_skus, resync_all_skus, catalog_refresh_now, catalog_refresh_schedule]

    @admin.display(description="Stored credentials")
    def stored_credentials(self, channel: Channel) -> str:
        """Which credentials are stored, never their values."""
        if not channel.credentials_encrypted:
            return "none"
        return ", ".join(f"{name}: ••••{str(value)[-2:] if len(str(value)) > 8 else ''}" for name, value in sorted(channel.credentials.items()))


@admin.register(SyncMark)
class SyncMarkAdmin(ReadOnlyAdmin):
    list_display = ["channel", "variant", "aspect", "version", "due_at", "attempts", "last_error", "failed_at", "held_reason",
                    "held_since"]
    list_filter = ["channel", "aspect", "held_reason"]
    search_fields = ["variant__sku"]
    list_select_related = ["channel", "variant"]


@admin.register(SyncAttempt)
class SyncAttemptAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "channel", "sku", "event_type", "status", "error_code", "retry_count", "latency_ms", "resolved_at"]
    # No date_hierarchy: it reads the distinct dates of the whole log (10 million rows); the
    # time filter and the paginator's estimate keep the page an index range scan.
    list_filter = ["channel", "status", "event_type", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["=sku"]
    list_select_related = ["channel"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = [resync_these_skus]


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    """Webhooks (and polled orders) as the channels sent them, and what applying them did."""

    list_display = ["received_at", "channel", "topic", "status", "deliveries", "detail"]
    list_filter = ["status", "channel", "topic", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["key", "detail"]
    list_select_related = ["channel"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["apply_again"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("channels.change_inboundevent")  # for the action; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in InboundEvent._meta.fields]

    @admin.action(description="Apply again (after fixing what needed attention, e.g. adding the SKU)")
    def apply_again(self, request, queryset):
        # Back to `received`: the inbound sweep applies it within its interval. Moves already
        # made are not made twice (the order lines' states and the unique references).
        count = queryset.filter(status=InboundEvent.Status.NEEDS_ATTENTION).update(
            status=InboundEvent.Status.RECEIVED, detail=f"queued again by {request.user}"
        )
        self.message_user(request, f"{count} event(s) queued to be applied again.")


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdmin):
    list_display = ["updated_at", "channel", "order_id", "line_id", "sku", "quantity", "state", "restocked"]
    list_filter = ["state", "channel"]
    search_fields = ["order_id", "sku"]
    list_select_related = ["channel"]
    show_full_result_count = False
