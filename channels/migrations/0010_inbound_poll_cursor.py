"""An index for the order poll's cursor: the newest order a channel's poll stored itself
(`channels/services/polling.py`), read on every poll of every polled channel. Built
concurrently on PostgreSQL (inbound events are written by every webhook meanwhile)."""
from django.db import migrations, models

from channels.migration_ops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("channels", "0009_contracts_mappings_shadow"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="inboundevent",
            index=models.Index(fields=["channel", "topic", "triggered_at"], name="inbound_poll_cursor_idx"),
        ),
    ]
