"""Indexes of the sync log for its real queries at 10 million rows (see benchmarks/synclog.py).

On PostgreSQL every index is built and dropped CONCURRENTLY (no lock that stops the flushes
writing attempts while a big table is indexed), hence `atomic = False`; elsewhere (SQLite in
`make run`) they are plain CREATE/DROP INDEX. If a concurrent build fails half way it leaves
an INVALID index: drop it and migrate again.
"""
from django.db import migrations, models

from channels.migration_ops import (
    AddIndexConcurrentlyOnPostgres,
    RemoveIndexConcurrentlyOnPostgres,
    is_postgres,
)

PROBLEM = ~models.Q(status="success")
OPEN_FAILURE = models.Q(resolved_at__isnull=True, status__in=["failure", "throttled"])


def _channel_id_indexes(schema_editor, model) -> list[str]:
    """The names of the plain one-column indexes on channel_id (the foreign key's own)."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["channel_id"]
    ]


def drop_channel_fk_index(apps, schema_editor):
    """The foreign key's own index on channel_id: (channel, timestamp) leads with it."""
    model = apps.get_model("channels", "SyncAttempt")
    for name in _channel_id_indexes(schema_editor, model):
        concurrently = "CONCURRENTLY " if is_postgres(schema_editor) else ""
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(name)}")


def restore_channel_fk_index(apps, schema_editor):
    model = apps.get_model("channels", "SyncAttempt")
    if _channel_id_indexes(schema_editor, model):
        return
    name = schema_editor._create_index_name(model._meta.db_table, ["channel_id"], suffix="")
    concurrently = "CONCURRENTLY " if is_postgres(schema_editor) else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}{schema_editor.quote_name(name)} ON {schema_editor.quote_name(model._meta.db_table)} "
        f"({schema_editor.quote_name('channel_id')})"
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("channels", "0005_sync_health"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="syncattempt",
            index=models.Index(fields=["status", "timestamp"], name="attempt_problem_time_idx", condition=PROBLEM),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="syncattempt",
            index=models.Index(
                fields=["channel", "status", "timestamp"], name="attempt_channel_problem_idx", condition=PROBLEM
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="syncattempt",
            index=models.Index(
                fields=["error_code", "timestamp"], name="attempt_error_time_idx", condition=~models.Q(error_code="")
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="syncattempt",
            index=models.Index(fields=["channel", "sku"], name="attempt_open_failure_idx", condition=OPEN_FAILURE),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="syncattempt",
            index=models.Index(fields=["timestamp"], name="attempt_open_failure_time_idx", condition=OPEN_FAILURE),
        ),
        # Replaced by attempt_open_failure_idx (the flush's resolve) and attempt_channel_problem_idx.
        RemoveIndexConcurrentlyOnPostgres(model_name="syncattempt", name="attempt_unresolved_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="syncattempt",
                    name="channel",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="attempts",
                        to="channels.channel",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_channel_fk_index, restore_channel_fk_index)],
        ),
    ]
