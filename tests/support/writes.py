"""What a request wrote: a fingerprint of every project table, taken before and after.

PostgreSQL: one statement, an md5 of each table's rows (so an UPDATE counts, not only an
INSERT or DELETE). SQLite: row counts and the highest rowid (inserts and deletes only)."""
from __future__ import annotations

from django.db import connection

# Tables a read may touch legitimately (none today); the rest must not move on a refusal.
PREFIXES = ("inventory_", "channels_", "auth_", "authtoken_", "django_celery_beat_")


def _tables() -> list[str]:
    names = connection.introspection.django_table_names(only_existing=True, include_views=False)
    return sorted(name for name in names if name.startswith(PREFIXES))


class TableSnapshot:
    def __init__(self):
        self.tables = _tables()
        quote = connection.ops.quote_name
        if connection.vendor == "postgresql":
            parts = [f"(SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {quote(t)} x)"
                     for t in self.tables]
        else:
            parts = [f"(SELECT count(*) || ':' || coalesce(max(rowid), 0) FROM {quote(t)})" for t in self.tables]
        self.statement = "SELECT " + ", ".join(parts)

    def take(self) -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(self.statement)
            return dict(zip(self.tables, cursor.fetchone()))

    @staticmethod
    def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
        return [table for table in before if before[table] != after.get(table)]
