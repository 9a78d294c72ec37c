"""PostgreSQL array literals for set-based statements over thousands of rows.

Django's psycopg backend binds parameters on the client, and psycopg turns a Python list into
an array literal element by element in Python: for the 10,000-row bulk import that was a
fifth of the request. These build the same literal with one `join` (pass it as a string and
cast it in SQL: `%s::bigint[]`), and read back the comma-separated ids a statement aggregates.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone


def int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, map(int, values))) + "}"


def text_array(values: Iterable[str]) -> str:
    # Every element quoted, with backslashes and double quotes escaped (PostgreSQL's array syntax).
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def time_array(values: Iterable[datetime]) -> str:
    # The rows of one write usually share one time: format each distinct value once.
    texts: dict[datetime, str] = {}

    def text(v: datetime) -> str:
        if v not in texts:
            texts[v] = '"' + (v if timezone.is_aware(v) else timezone.make_aware(v)).isoformat() + '"'
        return texts[v]

    return "{" + ",".join(map(text, values)) + "}"


def int_list(joined: str | None) -> list[int]:
    """The ids of `string_agg(id::text, ',')` (NULL when there were none)."""
    return [int(v) for v in joined.split(",")] if joined else []
