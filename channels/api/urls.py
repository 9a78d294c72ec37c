from django.urls import path
from rest_framework.routers import SimpleRouter

from . import alerts, trace, views

router = SimpleRouter()
router.register("channels", views.ChannelViewSet, basename="channel")

urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
    path("sync-logs/", views.SyncLogView.as_view(), name="sync-logs"),
    path("alerts/", alerts.AlertListView.as_view(), name="alerts"),
    path("changes/<str:change_id>/trace/", trace.ChangeTraceView.as_view(), name="change-trace"),
    path("inventory/<str:sku>/", views.InventoryView.as_view(), name="inventory"),
    *router.urls,
]
