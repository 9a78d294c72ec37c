from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Catalog and stock"

    def ready(self) -> None:
        from . import signals

        signals.connect()
