from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from channels.admin.dashboard import dashboard_urls
from channels.api.webhooks import channel_webhook
from channels.metrics.view import metrics

from .health import health, liveness

api = [
    path("", include("inventory.api.urls")),
    path("", include("channels.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("admin/dashboard/", include(dashboard_urls())),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api)),
    path("health/", health, name="health"),
    path("health/live/", liveness, name="health-live"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/<int:channel_id>/", channel_webhook, name="channel-webhook"),
]

handler404 = "syncsvc.errors.not_found"
