"""Admin for sync health: alerts (read-only, open first), per-channel thresholds (an inline on
the channel), circuit breakers (read-only, with "probe now" and "close now")."""
from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import F

from inventory.admin import ReadOnlyAdmin

from ..models import Alert, ChannelCircuit, ChannelHealth
from ..services.circuit import circuit_close, circuit_probe_now


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "open"), ("no", "cleared")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(cleared_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("opened_at", "channel", "kind", "is_open", "detail", "last_seen_at", "cleared_at", "notified_at")
    list_filter = (OpenFilter, "kind", "channel")
    search_fields = ("detail", "channel__name")
    list_select_related = ("channel",)
    date_hierarchy = "opened_at"
    show_full_result_count = False

    def get_ordering(self, request):
        return [F("cleared_at").desc(nulls_first=True), "-opened_at"]

    @admin.display(boolean=True, description="open")
    def is_open(self, alert: Alert) -> bool:
        return alert.is_open


class ChannelHealthInline(admin.StackedInline):
    """The channel's alert thresholds, editable with the channel."""

    model = ChannelHealth
    can_delete = False
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # noqa: RUF012 (Django's own shape)
    max_num = 1
    verbose_name = "alert thresholds and notifications"
    verbose_name_plural = "alert thresholds and notifications"
    fieldsets = (
        ("Dead and degraded", {"fields": (
            "expected_interval_s", "degraded_error_rate", "degraded_window_s", "degraded_min_attempts",
        )}),
        ("Drift and reconciliation", {"fields": (
            "drift_price_tolerance", "drift_stock_tolerance", "reconcile_cycle_s", "reconcile_resync",
        )}),
        ("Inbound silence", {"fields": ("inbound_silence_s",)}),
        ("Notifications", {"fields": ("notify_webhook_url", "notify_emails")}),
    )


@admin.register(ChannelHealth)
class ChannelHealthAdmin(admin.ModelAdmin):
    """The same thresholds, all channels at a glance."""

    list_display = (
        "channel", "expected_interval_s", "degraded_error_rate", "degraded_window_s", "degraded_min_attempts",
        "inbound_silence_s", "notify_webhook_url", "notify_emails",)
    list_select_related = ("channel",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # noqa: RUF012 (Django's own shape)

    def has_add_permission(self, request):
        return False  # made with the channel (or on first evaluation), edited here or on it


@admin.register(ChannelCircuit)
class ChannelCircuitAdmin(ReadOnlyAdmin):
    list_display = ("channel", "state", "consecutive_failures", "opened_at", "probe_at", "probes", "reason", "updated_at")
    list_filter = ("state",)
    list_select_related = ("channel",)
    actions = ("probe_now", "close_now")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("channels.change_channelcircuit")  # for the actions; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in ChannelCircuit._meta.fields]

    @admin.action(description="Probe now (one small flush; closes the circuit if the channel answers)")
    def probe_now(self, request, queryset):
        count = sum(circuit_probe_now(channel_id=pk) for pk in queryset.values_list("channel_id", flat=True))
        self.message_user(request, f"{count} circuit(s) will be probed now.")

    @admin.action(description="Close the circuit now (resume every owed write at once)")
    def close_now(self, request, queryset):
        count = sum(
            circuit_close(channel_id=pk, detail=f"closed by {request.user}")
            for pk in queryset.values_list("channel_id", flat=True)
        )
        self.message_user(request, f"{count} circuit(s) closed; their channels are woken.")
