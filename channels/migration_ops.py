"""Migration operations that build and drop indexes without blocking writes on PostgreSQL.

On PostgreSQL an index is built and dropped CONCURRENTLY (no lock that stops the flushes or
the webhooks writing while a big table is indexed), so a migration using them sets
`atomic = False`; elsewhere (SQLite in `make run`) they are plain CREATE/DROP INDEX. If a
concurrent build fails half way it leaves an INVALID index: drop it and migrate again.
"""
from functools import partial

from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    RemoveIndexConcurrently,
)
from django.db import migrations


def is_postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class _ConcurrentlyOnPostgres:
    """The concurrent operation (the next class in the MRO) on PostgreSQL, `plain` elsewhere."""

    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run = super().database_forwards if is_postgres(schema_editor) else partial(self.plain.database_forwards, self)
        return run(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run = super().database_backwards if is_postgres(schema_editor) else partial(self.plain.database_backwards, self)
        return run(app_label, schema_editor, from_state, to_state)


class AddIndexConcurrentlyOnPostgres(_ConcurrentlyOnPostgres, AddIndexConcurrently):
    plain = migrations.AddIndex


class RemoveIndexConcurrentlyOnPostgres(_ConcurrentlyOnPostgres, RemoveIndexConcurrently):
    plain = migrations.RemoveIndex
