from django.urls import path
from rest_framework.routers import SimpleRouter

from . import alerts, event_schemas, mapping, refresh, resync, shadow, trace, views

router = SimpleRouter()
router.register("channels", views.ChannelViewSet, basename="channel")

urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
    path("channels/<int:pk>/resync/", resync.ResyncView.as_view(), name="channel-resync"),
    path("channels/<int:pk>/resync/<int:job_id>/", resync.ResyncJobView.as_view(), name="channel-resync-job"),
    path("channels/<int:pk>/reconcile/", resync.ReconcileNowView.as_view(), name="channel-reconcile"),
    path("channels/<int:pk>/attribute-mappings/", mapping.AttributeMappingList.as_view(), name="channel-mappings"),
    path("channels/<int:pk>/attribute-mappings/<int:mapping_id>/", mapping.AttributeMappingDetail.as_view(),
         name="channel-mapping"),
    path("channels/<int:pk>/unmapped-attributes/", mapping.UnmappedAttributeList.as_view(), name="channel-unmapped"),
    path("channels/<int:pk>/shadow-diff/", shadow.ShadowDiffView.as_view(), name="channel-shadow-diff"),
    path("channels/<int:pk>/catalog-refresh/", refresh.CatalogRefreshView.as_view(), name="channel-catalog-refresh"),
    path("channels/<int:pk>/catalog-refresh/<int:refresh_id>/", refresh.CatalogRefreshDetailView.as_view(),
         name="channel-catalog-refresh-detail"),
    path("channels/<int:pk>/catalog-refresh/<int:refresh_id>/cancel/", refresh.CatalogRefreshCancelView.as_view(),
         name="channel-catalog-refresh-cancel"),
    path("incidents/", resync.IncidentList.as_view(), name="incidents"),
    path("sync-logs/", views.SyncLogView.as_view(), name="sync-logs"),
    path("changes/<str:change_id>/trace/", trace.ChangeTraceView.as_view(), name="change-trace"),
    path("alerts/", alerts.AlertListView.as_view(), name="alerts"),
    path("event-schemas/", event_schemas.EventSchemaListView.as_view(), name="event-schemas"),
    path("event-schemas/<str:event_type>/<str:version>/", event_schemas.EventSchemaView.as_view(), name="event-schema"),
    path("inventory/<str:sku>/", views.InventoryView.as_view(), name="inventory"),
    *router.urls,
]
