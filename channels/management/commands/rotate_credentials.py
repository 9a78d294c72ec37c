from django.core.management.base import BaseCommand
from django.db import transaction

from channels.crypto import fernet
from channels.models import Channel


class Command(BaseCommand):
    help = "Re-encrypt every channel's credentials with the first SYNCSVC_ENCRYPTION_KEY (after prepending a new key)."

    @transaction.atomic
    def handle(self, **options):
        channels = Channel.objects.select_for_update().exclude(credentials_encrypted="")
        for channel in channels:
            channel.credentials_encrypted = fernet().rotate(channel.credentials_encrypted.encode()).decode()
            channel.save(update_fields=["credentials_encrypted"])
        self.stdout.write(f"re-encrypted the credentials of {len(channels)} channel(s)")
