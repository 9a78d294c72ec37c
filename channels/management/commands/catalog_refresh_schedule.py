from django.core.management.base import BaseCommand

from channels.models import Channel
from channels.services.refresh_schedule import (
    refresh_schedule_describe,
    refresh_schedule_sync,
)


class Command(BaseCommand):
    help = ("Create or update every channel's nightly catalog refresh schedule (django-celery-beat periodic "
            "task catalog-refresh:<channel id>) from its settings.catalog_refresh, and list them.")

    def handle(self, **options):
        for channel in Channel.objects.order_by("pk"):
            if refresh_schedule_sync(channel=channel) is None:
                self.stdout.write(f"{channel.name}: no catalog refresh (its content cannot be refreshed)")
                continue
            schedule = refresh_schedule_describe(channel)
            state = "enabled" if schedule["enabled"] else "disabled"
            self.stdout.write(f"{channel.name}: {schedule['name']} at \"{schedule['crontab']}\" {schedule['timezone']} ({state})")
