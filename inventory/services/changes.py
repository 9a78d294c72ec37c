from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from syncsvc.logcontext import log_context

from ..models import Aspect, Change
from ..signals import changes_recorded
from .sqlarrays import int_array

log = logging.getLogger(__name__)

# `Change.from_db` takes values in the model's field order.
_FIELDS = ("id", "variant_id", "aspect", "origin", "created_at")


def changes_record(*, variant_ids: Iterable[int], aspect: str, origin: str, urgent: bool = False) -> list[Change]:
    """Record that `aspect` of these variants changed, in the caller's transaction, and tell
    subscribers (the channels' fan-out) before the transaction commits. `urgent` (the PIM's
    flag: a correction that must not wait) goes to the subscribers with the changes."""
    if aspect not in Aspect.values:
        raise ValueError(f"unknown aspect {aspect!r}")
    ids = list(dict.fromkeys(variant_ids))
    if not ids:
        return []
    if not transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return changes_record(variant_ids=ids, aspect=aspect, origin=origin, urgent=urgent)
    now = timezone.now()
    if connection.vendor == "postgresql":
        changes = _insert_postgres(ids, aspect, origin, now)
    else:
        changes = Change.objects.bulk_create(
            [Change(variant_id=variant_id, aspect=aspect, origin=origin, created_at=now) for variant_id in ids],
            batch_size=5000,
        )
    # The fan-out's lines (and the wake-ups it leaves for the commit) carry the change ids too.
    with log_context(change_ids=[change.pk for change in changes]):
        log.info("recorded %d %s change(s) from %s", len(changes), aspect, origin)
        changes_recorded.send(sender=Change, changes=changes, urgent=urgent)
    return changes


def _insert_postgres(ids: list[int], aspect: str, origin: str, now: datetime) -> list[Change]:
    # One statement for any number of rows (bulk_create compiles a placeholder per value and
    # splits into batches); `from_db` builds the instances without the keyword-argument path.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_change (variant_id, aspect, origin, created_at)"
            " SELECT v, %s, %s, %s FROM unnest(%s::bigint[]) WITH ORDINALITY AS d(v, n) ORDER BY n"
            " RETURNING id, variant_id",
            [aspect, origin, now, int_array(ids)],
        )
        rows = cursor.fetchall()
    alias, from_db = connection.alias, Change.from_db
    return [from_db(alias, _FIELDS, (pk, variant_id, aspect, origin, now)) for pk, variant_id in rows]
