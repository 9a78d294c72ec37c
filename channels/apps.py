from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels and sync"

    def ready(self) -> None:
        from django.contrib.auth.models import User
        from django.db.models.signals import (
            m2m_changed,
            post_delete,
            post_migrate,
            post_save,
        )
        from rest_framework.authtoken.models import Token

        from inventory.signals import changes_recorded
        from syncsvc.authentication import forget_tokens
        from syncsvc.permissions import roles_grant

        from syncsvc.heartbeats import add_routed_queues

        from .receivers import on_changes_recorded
        from .routing import dedicated_sync_queues

        # /health/ and the queue-length metric count each channel's dedicated flush queue too.
        add_routed_queues(dedicated_sync_queues)
        changes_recorded.connect(on_changes_recorded, dispatch_uid="channels.fan_out")
        # channels migrates after inventory: by then both apps' permissions exist.
        post_migrate.connect(roles_grant, sender=self, dispatch_uid="syncsvc.roles_grant")
        # The API's remembered tokens (syncsvc.authentication) are forgotten when one changes here.
        post_delete.connect(forget_tokens, sender=Token, dispatch_uid="syncsvc.forget_tokens.token")
        post_save.connect(forget_tokens, sender=User, dispatch_uid="syncsvc.forget_tokens.user")
        m2m_changed.connect(forget_tokens, sender=User.groups.through, dispatch_uid="syncsvc.forget_tokens.groups")
