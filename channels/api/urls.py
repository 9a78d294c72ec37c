from django.urls import path
from rest_framework.routers import SimpleRouter

from . import alerts, event_schemas, resync, trace, views

router = SimpleRouter()
router.register("channels", views.ChannelViewSet, basename="channel")

urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
    path("channels/<int:pk>/resync/", resync.ResyncView.as_view(), name="channel-resync"),
    path("channels/<int:pk>/resync/<int:job_id>/", resync.ResyncJobView.as_view(), name="channel-resync-job"),
    path("channels/<int:pk>/reconcile/", resync.ReconcileNowView.as_view(), name="channel-reconcile"),
    path("incidents/", resync.IncidentList.as_view(), name="incidents"),
    path("sync-logs/", views.SyncLogView.as_view(), name="sync-logs"),
    path("changes/<str:change_id>/trace/", trace.ChangeTraceView.as_view(), name="change-trace"),
    path("alerts/", alerts.AlertListView.as_view(), name="alerts"),
    path("event-schemas/", event_schemas.EventSchemaListView.as_view(), name="event-schemas"),
    path("event-schemas/<str:event_type>/<str:version>/", event_schemas.EventSchemaView.as_view(), name="event-schema"),
    path("inventory/<str:sku>/", views.InventoryView.as_view(), name="inventory"),
    *router.urls,
]
