"""Admin pages over tables of millions of rows (the sync log, inbound events).

The admin counts the rows to paginate: on an unfiltered changelist that is a full scan of the
table. `EstimatedCountPaginator` takes PostgreSQL's own estimate (`pg_class.reltuples`, kept
by autovacuum) when nothing filters the list, and counts exactly otherwise (a filter narrows
the scan to an index range).
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

EXACT_BELOW = 100_000  # an estimate this small may be stale enough to matter: count it


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None or query.where or connections[queryset.db].vendor != "postgresql":
            return super().count
        with connections[queryset.db].cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
            row = cursor.fetchone()
        estimate = int(row[0]) if row and row[0] is not None else -1
        return estimate if estimate >= EXACT_BELOW else super().count
