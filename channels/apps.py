from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels and sync"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from inventory.signals import changes_recorded
        from syncsvc.permissions import roles_grant

        from .receivers import on_changes_recorded

        changes_recorded.connect(on_changes_recorded, dispatch_uid="channels.fan_out")
        # channels migrates after inventory: by then both apps' permissions exist.
        post_migrate.connect(roles_grant, sender=self, dispatch_uid="syncsvc.roles_grant")
