"""Admin for nightly catalog refreshes: the list (done/total, ETA), the chunks (capped), and
the actions on channels ("Refresh catalog now", "Schedule nightly refresh") and on refreshes
("Cancel"). The actions call the same services as the API. The schedules themselves are
django-celery-beat periodic tasks named `catalog-refresh:<channel id>` (Periodic tasks)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from inventory.admin import ReadOnlyAdmin

from ..models import CatalogRefresh, CatalogRefreshChunk
from ..services.catalog_refresh import (
    RefreshError,
    catalog_refresh_cancel,
    catalog_refresh_progress,
    catalog_refresh_start,
)
from ..services.refresh_schedule import refresh_schedule_sync
from .progress import eta_text, progress_of, progress_text

SHOWN_CHUNKS = 100


@admin.action(description="Refresh catalog content now (bulk path)")
def catalog_refresh_now(modeladmin, request, queryset):
    if not request.user.has_perm("channels.add_catalogrefresh"):
        modeladmin.message_user(request, "You may not start catalog refreshes.", messages.ERROR)
        return
    for channel in queryset:
        try:
            refresh = catalog_refresh_start(channel=channel, trigger=CatalogRefresh.Trigger.MANUAL,
                                            requested_by=request.user.get_username())
        except RefreshError as refused:
            modeladmin.message_user(request, f"{channel.name}: {refused.message}", messages.ERROR)
            continue
        url = reverse("admin:channels_catalogrefresh_change", args=[refresh.pk])
        modeladmin.message_user(request, format_html('{}: catalog refresh <a href="{}">#{}</a> of {} SKU(s) started.',
                                                     channel.name, url, refresh.pk, refresh.total))


@admin.action(description="Schedule nightly catalog refresh (create or update its periodic task)")
def catalog_refresh_schedule(modeladmin, request, queryset):
    for channel in queryset:
        task = refresh_schedule_sync(channel=channel)
        if task is None:
            modeladmin.message_user(request, f"{channel.name}: its content cannot be refreshed.", messages.WARNING)
            continue
        url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
        modeladmin.message_user(request, format_html('{}: <a href="{}">{}</a> runs at "{}" ({}).', channel.name, url,
                                                     task.name, _crontab(task), "enabled" if task.enabled else "disabled"))


def _crontab(task) -> str:
    crontab = task.crontab
    if crontab is None:
        return "no crontab"
    return f"{crontab.minute} {crontab.hour} {crontab.day_of_month} {crontab.month_of_year} {crontab.day_of_week} {crontab.timezone}"


@admin.register(CatalogRefresh)
class CatalogRefreshAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "channel", "status", "trigger", "progress", "eta", "failed", "requested_by")
    list_filter = ("status", "trigger", "channel")
    list_select_related = ("channel",)
    readonly_fields = ("channel", "status", "trigger", "requested_by", "progress", "eta", "total", "done", "failed",
                       "chunk_size", "bulk", "created_at", "started_at", "finished_at", "detail", "chunks_shown")
    fields = readonly_fields
    actions = ("cancel",)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("channels.change_catalogrefresh")  # for the action; fields stay read-only

    @admin.display(description="Done / total")
    def progress(self, refresh: CatalogRefresh) -> str:
        return progress_text(progress_of(refresh, catalog_refresh_progress))

    @admin.display(description="ETA")
    def eta(self, refresh: CatalogRefresh) -> str:
        if refresh.finished_at:
            return "finished"
        return eta_text(progress_of(refresh, catalog_refresh_progress)["eta_s"])

    @admin.display(description="Chunks")
    def chunks_shown(self, refresh: CatalogRefresh) -> str:
        chunks = list(CatalogRefreshChunk.objects.filter(refresh=refresh).order_by("seq")[:SHOWN_CHUNKS])
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}–{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((c.seq, c.first_variant_id, c.last_variant_id, c.size, c.status, c.starts, c.ok, c.failed,
              c.error or ", ".join(f"{sku}: {message}" for sku, message in list(c.failures.items())[:3]))
             for c in chunks),
        )
        total = CatalogRefreshChunk.objects.filter(refresh=refresh).count()
        more = f"the first {SHOWN_CHUNKS} of {total}" if total > SHOWN_CHUNKS else f"all {total}"
        return format_html(
            "<table><tr><th>#</th><th>variant ids</th><th>size</th><th>status</th><th>starts</th><th>ok</th>"
            "<th>failed</th><th>error / failures</th></tr>{}</table><p>{} chunk(s)</p>", rows, more,
        )

    @admin.action(description="Cancel (no chunk starts after this)")
    def cancel(self, request, queryset):
        count = sum(catalog_refresh_cancel(refresh=refresh) for refresh in queryset)
        self.message_user(request, f"{count} refresh(es) cancelled.")
