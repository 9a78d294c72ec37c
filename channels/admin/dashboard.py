"""The merchandisers' dashboard in the admin: `/admin/dashboard/` (the page), `data/` (the
same data as JSON, which the page polls to refresh itself) and `channels/<id>/resync/` (the
"Resync failed SKUs" button). Staff only, through the admin's own login; the button also
needs the `ops` or `merchandiser` role (or a superuser, or the add-resync-job permission).

Mounted by syncsvc/urls.py with `dashboard_urls()`, under the `dashboard` namespace.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from syncsvc.permissions import user_roles

from ..dashboard import dashboard_overview, resync_candidates
from ..models import Channel

REFRESH_S = 3
RESYNC_ROLES = {"ops", "merchandiser"}


def can_resync(user) -> bool:
    return user.is_superuser or bool(RESYNC_ROLES & user_roles(user)) or user.has_perm("channels.add_resyncjob")


@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Sync dashboard",
        "overview": dashboard_overview(),
        "data_url": reverse("dashboard:data"),
        "refresh_ms": REFRESH_S * 1000,
        "can_resync": can_resync(request.user),
    }
    return TemplateResponse(request, "admin/channels/dashboard.html", context)


@require_GET
def dashboard_data(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dashboard_overview())


@require_POST
def dashboard_resync(request: HttpRequest, channel_id: int) -> HttpResponse:
    """Queue a forced resync of the channel's failed SKUs (`resync_candidates`)."""
    if not can_resync(request.user):
        raise PermissionDenied("Resyncing needs the ops or merchandiser role.")
    channel = get_object_or_404(Channel, pk=channel_id)
    skus = resync_candidates(channel=channel)
    if not skus:
        messages.info(request, f"{channel.name}: no failed SKUs, nothing to resync.")
        return redirect("dashboard:index")
    # Imported on use: the resync service pulls in the adapters, which the admin does not need.
    from ..services.resync import ResyncError, resync_start

    try:
        job = resync_start(
            channel=channel, skus=skus, requested_by=request.user.get_username(),
            reason=f"dashboard: resync of {len(skus)} failed SKU(s)",
        )
    except ResyncError as error:
        messages.error(request, f"{channel.name}: resync refused: {error.field}: {error.message}")
        return redirect("dashboard:index")
    # (resync_start also has an open circuit breaker probe the channel at once.)
    messages.success(request, f"{channel.name}: resync {job.pk} of {len(skus)} failed SKU(s) queued.")
    return redirect("dashboard:index")


def dashboard_urls() -> tuple[list, str]:
    """For `include()`: the dashboard's URLs behind the admin's login and CSRF checks."""
    wrap = admin.site.admin_view
    return [
        path("", wrap(dashboard_page), name="index"),
        path("data/", wrap(dashboard_data), name="data"),
        path("channels/<int:channel_id>/resync/", wrap(dashboard_resync), name="resync"),
    ], "dashboard"


# The admin index links to the dashboard (the admin's own index.html, with a link above it).
admin.site.index_template = "admin/channels/index.html"
