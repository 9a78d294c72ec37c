"""Admin for forced resyncs, drift and incidents, and the resync actions on channels and on
sync attempts. The actions call the same service as the API (`resync_start`)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from inventory.admin import ReadOnlyAdmin
from inventory.models import Variant

from ..models import Channel, Drift, Incident, ResyncItem, ResyncJob
from ..services.incidents import failed_skus, failures_since
from ..services.resync import ResyncError, resync_cancel, resync_progress, resync_start
from .progress import eta_text, progress_of, progress_text

SHOWN_ITEMS = 100


def _may_resync(modeladmin, request) -> bool:
    if request.user.has_perm("channels.add_resyncjob"):
        return True
    modeladmin.message_user(request, "You may not start resyncs.", messages.ERROR)
    return False


def _start(modeladmin, request, channel: Channel, **kwargs) -> None:
    try:
        job = resync_start(channel=channel, requested_by=request.user.get_username(), **kwargs)
    except ResyncError as refused:
        modeladmin.message_user(request, f"{channel.name}: {refused.message}", messages.ERROR)
        return
    url = reverse("admin:channels_resyncjob_change", args=[job.pk])
    modeladmin.message_user(
        request, format_html('{}: resync <a href="{}">#{}</a> of {} SKU(s) started.', channel.name, url, job.pk, job.total)
    )


@admin.action(description="Resync failed SKUs (failed or drifted since the last incident)")
def resync_failed_skus(modeladmin, request, queryset):
    if not _may_resync(modeladmin, request):
        return
    for channel in queryset:
        skus = failed_skus(channel=channel, since=failures_since(channel))
        if not skus:
            modeladmin.message_user(request, f"{channel.name}: no failed SKUs to resync.", messages.WARNING)
            continue
        _start(modeladmin, request, channel, skus=skus[:10_000], reason="failed SKUs (admin)")


@admin.action(description="Resync all SKUs")
def resync_all_skus(modeladmin, request, queryset):
    if not _may_resync(modeladmin, request):
        return
    for channel in queryset:
        _start(modeladmin, request, channel, all_skus=True, reason="all SKUs (admin)")


@admin.action(description="Resync these SKUs on their channels")
def resync_these_skus(modeladmin, request, queryset):
    if not _may_resync(modeladmin, request):
        return
    by_channel: dict[int, set[str]] = {}
    for channel_id, sku in queryset.values_list("channel_id", "sku")[:10_000]:
        by_channel.setdefault(channel_id, set()).add(sku)
    for channel in Channel.objects.filter(pk__in=by_channel):
        known = set(Variant.objects.filter(sku__in=by_channel[channel.pk]).values_list("sku", flat=True))
        if known:
            _start(modeladmin, request, channel, skus=sorted(known), reason="selected attempts (admin)")


@admin.register(ResyncJob)
class ResyncJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "channel", "status", "progress", "eta", "verified", "failed", "requested_by", "reason")
    list_filter = ("status", "channel")
    list_select_related = ("channel",)
    date_hierarchy = "created_at"
    readonly_fields = ("channel", "status", "progress", "eta", "all_skus", "aspects", "requested_by", "reason",
                       "total", "delivered", "verified", "failed", "created_at", "started_at", "finished_at",
                       "detail", "incident", "items_shown")
    fields = readonly_fields
    actions = ("cancel",)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("channels.change_resyncjob")  # for the action; fields stay read-only

    @admin.display(description="Done / total")
    def progress(self, job: ResyncJob) -> str:
        return progress_text(progress_of(job, resync_progress))

    @admin.display(description="ETA")
    def eta(self, job: ResyncJob) -> str:
        if job.finished_at:
            return "finished"
        return eta_text(progress_of(job, resync_progress)["eta_s"])

    @admin.display(description="Items (those needing attention first)")
    def items_shown(self, job: ResyncJob) -> str:
        items = list(
            ResyncItem.objects.filter(job=job).filter(~Q(state=ResyncItem.State.VERIFIED)).order_by("pk")[:SHOWN_ITEMS]
        )
        if len(items) < SHOWN_ITEMS:
            items += list(ResyncItem.objects.filter(job=job, state=ResyncItem.State.VERIFIED).order_by("pk")
                          [:SHOWN_ITEMS - len(items)])
        url = reverse("admin:channels_resyncitem_changelist") + f"?job__id__exact={job.pk}"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((i.sku, i.state, i.detail) for i in items))
        return format_html('<table><tr><th>SKU</th><th>state</th><th>detail</th></tr>{}</table>'
                           '<p><a href="{}">all {} item(s)</a></p>', rows, url, job.total)

    @admin.action(description="Cancel (stop following; what is owed is still delivered)")
    def cancel(self, request, queryset):
        count = sum(resync_cancel(job=job) for job in queryset)
        self.message_user(request, f"{count} job(s) cancelled.")


@admin.register(ResyncItem)
class ResyncItemAdmin(ReadOnlyAdmin):
    list_display = ("job", "sku", "state", "detail", "updated_at")
    list_filter = ("state", "job__channel")
    search_fields = ("sku",)
    show_full_result_count = False


@admin.register(Drift)
class DriftAdmin(ReadOnlyAdmin):
    list_display = ("detected_at", "channel", "sku", "aspect", "expected", "live", "last_seen_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "channel", "aspect")
    search_fields = ("sku",)
    list_select_related = ("channel",)
    show_full_result_count = False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("detected_at", "title", "cause", "channel_names", "sku_count", "recovered_at")
    list_filter = (("recovered_at", admin.EmptyFieldListFilter),)
    search_fields = ("title", "cause")

    @admin.display(description="Channels")
    def channel_names(self, incident: Incident) -> str:
        return ", ".join(incident.channels.values_list("name", flat=True))

    @admin.display(description="SKUs")
    def sku_count(self, incident: Incident) -> int:
        return len(incident.skus)

