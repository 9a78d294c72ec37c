from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("products", views.ProductViewSet, basename="product")

urlpatterns = [
    path("variants/<str:sku>/", views.VariantView.as_view(), name="variant"),
    path("prices/bulk/", views.PricesBulkView.as_view(), name="prices-bulk"),
    path("inventory/adjustments/", views.AdjustmentsView.as_view(), name="inventory-adjustments"),
    path("inventory/counts/", views.CountsView.as_view(), name="inventory-counts"),
    *router.urls,
]
