from django.contrib import admin

from .models import Product, StockLevel, StockMovement, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["sku", "price", "compare_at_price", "barcode", "attributes", "price_changed_at"]
    readonly_fields = ["price_changed_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["handle", "title", "updated_at"]
    search_fields = ["handle", "title", "variants__sku"]
    inlines = [VariantInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ledger is written through services only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MovementInline(admin.TabularInline):
    model = StockMovement
    fk_name = "variant"
    extra = 0
    can_delete = False
    fields = ["created_at", "location", "reason", "delta", "on_hand_after", "reserved_after", "source", "reference"]
    readonly_fields = fields
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


class StockLevelInline(admin.TabularInline):
    model = StockLevel
    extra = 0
    can_delete = False
    fields = ["location", "on_hand", "reserved", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["sku", "product", "price", "compare_at_price", "price_changed_at"]
    search_fields = ["sku", "product__handle", "barcode"]
    list_select_related = ["product"]
    readonly_fields = ["price_changed_at"]
    inlines = [StockLevelInline, MovementInline]


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ["variant", "location", "on_hand", "reserved", "updated_at"]
    search_fields = ["variant__sku"]
    list_filter = ["location"]
    list_select_related = ["variant"]


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "variant", "location", "reason", "delta", "on_hand_after", "source", "reference"]
    list_filter = ["reason", "location", "source"]
    search_fields = ["variant__sku", "reference"]
    list_select_related = ["variant"]
