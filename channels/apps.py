from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels and sync"

    def ready(self) -> None:
        from inventory.signals import changes_recorded

        from .receivers import on_changes_recorded

        changes_recorded.connect(on_changes_recorded, dispatch_uid="channels.fan_out")
