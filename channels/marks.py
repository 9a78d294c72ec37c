"""Pending sync marks: set-based fan-out, leased claims, compare-and-delete.

The SQL is written per database vendor where it must be set-based: PostgreSQL takes arrays
(`unnest`) and `FOR UPDATE SKIP LOCKED`; SQLite (the embedded default) takes JSON arrays and
serializes writers anyway.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import connection
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.services.sqlarrays import int_array, time_array

from .models import SyncMark

_TABLE = SyncMark._meta.db_table


@dataclass(frozen=True)
class ClaimedMark:
    id: int
    variant_id: int
    aspect: str
    version: int
    first_committed_at: datetime
    attempts: int
    last_error: str = ""
    # For the threshold rules (channels/services/thresholds.py).
    delivered_at: datetime | None = None
    urgent: bool = False
    held_since: datetime | None = None
    held_reason: str | None = None


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def db_time(value: datetime | None):
    """A datetime as a raw SQL parameter: as is for PostgreSQL, as text for SQLite."""
    if value is None or _is_postgres():
        return value
    return connection.ops.adapt_datetimefield_value(value)


def _parse_time(value) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return timezone.make_aware(value, dt_timezone.utc) if timezone.is_naive(value) else value


def marks_upsert(
    *, channel_ids: Sequence[int], aspect: str, changes: Sequence[tuple[int, int, datetime]], urgent: bool = False
) -> None:
    """Owe `aspect` of these variants to these channels: one mark each, coalesced.

    `changes` are (variant_id, change_id, committed_at). An existing mark takes the newer
    version. Its due time:
    - a pending mark keeps its own (due now, in retry backoff, or waiting out a hot window),
      so new changes don't burn attempts on a failing channel;
    - a mark that gave up is revived, due now;
    - a mark settled less than the hot window ago is due when the window ends (a SKU edited
      in a burst becomes a few writes);
    - otherwise it is due now.
    `urgent` (low stock, or the API's `urgent` flag) skips the hot window, and pulls a pending
    mark waiting out one in to now; a mark in retry backoff still keeps its time. It is also
    remembered on the mark (`urgent_version`): the flush lets it skip the threshold rules.
    A mark held by a threshold (`min_units`) is due now again, so the flush weighs the new
    figure (it keeps its batch time if it is still under the threshold).
    Latency is measured from `first_committed_at`, the oldest change not yet delivered: it
    restarts when a settled mark is owed again, or when the first change lands while the
    mark is in flight (the flush is delivering the older state).
    """
    if not channel_ids or not changes:
        return
    now = timezone.now()
    hot_s = settings.SYNCSVC["HOT_COALESCE_S"]
    hot_cutoff = db_time(now - timedelta(seconds=hot_s))
    hot_due = db_time(now if urgent else now + timedelta(seconds=hot_s))
    greatest = "GREATEST" if _is_postgres() else "MAX"
    # Pending and waiting out a hot window (no failed attempt yet): an urgent change goes now.
    pull_in = "WHEN m.due_at IS NOT NULL AND m.attempts = 0 AND m.due_at > %s THEN %s" if urgent else ""
    conflict_params = ([db_time(now), db_time(now)] if urgent else []) + [db_time(now), hot_cutoff, hot_due]
    conflict = f"""
        ON CONFLICT (channel_id, variant_id, aspect) DO UPDATE SET
            version = {greatest}(m.version, excluded.version),
            last_committed_at = excluded.last_committed_at,
            first_committed_at = CASE
                WHEN m.due_at IS NULL THEN excluded.first_committed_at
                WHEN m.lease_until IS NOT NULL AND m.version = m.claimed_version THEN excluded.first_committed_at
                ELSE m.first_committed_at END,
            due_at = CASE
                WHEN m.failed_at IS NOT NULL THEN excluded.due_at
                {pull_in}
                WHEN m.held_reason = 'min_units' AND m.lease_until IS NULL THEN %s
                WHEN m.due_at IS NOT NULL THEN m.due_at
                WHEN m.delivered_at > %s THEN %s
                ELSE excluded.due_at END,
            attempts = CASE WHEN m.failed_at IS NOT NULL THEN 0 ELSE m.attempts END,
            failed_at = NULL,
            urgent_version = COALESCE(excluded.urgent_version, m.urgent_version)
    """
    columns = (
        "channel_id, variant_id, aspect, version, first_committed_at, last_committed_at, due_at, attempts, last_error,"
        " urgent_version"
    )
    urgent_version = "CASE WHEN %s THEN d.version END" if _is_postgres() else "CASE WHEN %s THEN json_extract(d.value, '$[1]') END"
    with connection.cursor() as cursor:
        if _is_postgres():
            variant_ids, versions, times = zip(*changes)
            # Arrays as literals built in one join each (see inventory.services.sqlarrays).
            cursor.execute(
                f"""
                INSERT INTO {_TABLE} AS m ({columns})
                SELECT c.channel_id, d.variant_id, %s, d.version, d.committed_at, d.committed_at, %s, 0, '',
                       {urgent_version}
                  FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS d(variant_id, version, committed_at)
                 CROSS JOIN unnest(%s::bigint[]) AS c(channel_id)
                 ORDER BY c.channel_id, d.variant_id
                {conflict}
                """,
                [aspect, now, urgent, int_array(variant_ids), int_array(versions), time_array(times),
                 int_array(channel_ids), *conflict_params],
            )
        else:
            rows = json.dumps([[v, c, db_time(t)] for v, c, t in changes])
            cursor.execute(
                f"""
                INSERT INTO {_TABLE} AS m ({columns})
                SELECT c.value, json_extract(d.value, '$[0]'), %s, json_extract(d.value, '$[1]'),
                       json_extract(d.value, '$[2]'), json_extract(d.value, '$[2]'), %s, 0, '', {urgent_version}
                  FROM json_each(%s) AS d CROSS JOIN json_each(%s) AS c
                 WHERE true
                 ORDER BY c.value, json_extract(d.value, '$[0]')
                {conflict}
                """,
                [aspect, db_time(now), urgent, rows, json.dumps(list(channel_ids)), *conflict_params],
            )


def marks_claim(*, channel_id: int, claimer: str, limit: int, lease_s: float) -> list[ClaimedMark]:
    """Lease up to `limit` due marks of a channel to `claimer`, oldest due first.

    Concurrent flushers get disjoint sets (SKIP LOCKED); a flusher that dies leaves its marks
    to come due again when the lease ends.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_s)
    skip_locked = "FOR UPDATE SKIP LOCKED" if _is_postgres() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {_TABLE} SET claimed_by = %s, lease_until = %s, claimed_version = version
             WHERE id IN (
                SELECT id FROM {_TABLE}
                 WHERE channel_id = %s AND failed_at IS NULL AND due_at <= %s
                   AND (lease_until IS NULL OR lease_until < %s)
                 ORDER BY due_at, id
                 LIMIT %s {skip_locked})
            RETURNING id, variant_id, aspect, version, first_committed_at, attempts, last_error,
                      delivered_at, urgent_version, held_since, held_reason
            """,
            [claimer, db_time(lease_until), channel_id, db_time(now), db_time(now), limit],
        )
        rows = cursor.fetchall()
    return [
        ClaimedMark(
            id=r[0], variant_id=r[1], aspect=r[2], version=r[3], first_committed_at=_parse_time(r[4]),
            attempts=r[5], last_error=r[6], delivered_at=_parse_time(r[7]) if r[7] else None,
            urgent=r[8] is not None, held_since=_parse_time(r[9]) if r[9] else None, held_reason=r[10],
        )
        for r in rows
    ]


def marks_lock(*, mark_ids: Sequence[int]) -> None:
    """Lock these marks in (channel, variant, aspect) order, the order `marks_upsert` writes
    them in, so two transactions touching the same marks cannot deadlock. PostgreSQL only
    (SQLite takes one writer at a time)."""
    if not mark_ids or not _is_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {_TABLE} WHERE id = ANY(%s::bigint[]) ORDER BY channel_id, variant_id, aspect FOR UPDATE",
            [int_array(mark_ids)],
        )


def marks_clear(*, mark_ids: Sequence[int], claimer: str, hot_delay_s: float = 0.0) -> int:
    """Settle delivered marks whose version is still the one claimed; release the others (a
    change landed mid-flight: it is due again after `hot_delay_s`, so a hot SKU coalesces).
    Returns how many were settled."""
    if not mark_ids:
        return 0
    now = timezone.now()
    released = dict(
        claimed_by=None, lease_until=None, claimed_version=None, attempts=0, last_error="", held_since=None, held_reason=None
    )
    settled = SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer, version=F("claimed_version")).update(
        **released, due_at=None, delivered_at=now, urgent_version=None
    )
    if settled < len(mark_ids):  # usually none is left: skip the statement
        # Delivered too (the minimum interval counts from now); an urgent change that landed
        # mid-flight stays urgent.
        SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).update(
            **released, due_at=now + timedelta(seconds=hot_delay_s), delivered_at=now,
            urgent_version=Case(When(urgent_version__gt=F("claimed_version"), then=F("urgent_version")), default=None),
        )
    return settled


def marks_drop(*, mark_ids: Sequence[int], claimer: str) -> int:
    """Delete claimed marks that are owed nothing any more (their variant is gone)."""
    if not mark_ids:
        return 0
    return SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).delete()[0]


def marks_prune_settled(*, older_than_s: float, batch: int = 5000) -> int:
    """Delete settled marks older than the hot window needs, in small batches."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    total = 0
    while True:
        ids = list(
            SyncMark.objects.filter(due_at__isnull=True, delivered_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return total
        total += SyncMark.objects.filter(pk__in=ids, due_at__isnull=True).delete()[0]


def marks_retry_later(*, mark_ids: Sequence[int], claimer: str, delay_s: float, error: str, count_attempt: bool = True) -> None:
    """Release claimed marks to come due again after `delay_s` (a backoff or a throttle)."""
    if not mark_ids:
        return
    SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).update(
        claimed_by=None,
        lease_until=None,
        claimed_version=None,
        attempts=F("attempts") + (1 if count_attempt else 0),
        last_error=error[:255],
        due_at=timezone.now() + timedelta(seconds=delay_s),
        held_since=None,  # sent: no longer held (a retry is not a threshold's doing)
        held_reason=None,
    )


def marks_give_up(*, mark_ids: Sequence[int], claimer: str, error: str) -> None:
    """Stop retrying: the marks stay, visible as failed, until a resync or a new change."""
    if not mark_ids:
        return
    SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).update(
        claimed_by=None, lease_until=None, claimed_version=None, last_error=error[:255], failed_at=timezone.now()
    )


def marks_of_deleted_channels_drop(*, channel_ids: Sequence[int]) -> int:
    """Delete the marks of channels that no longer exist. The ORM cascades a channel's delete;
    the table has no foreign keys (migration 0004) to catch a raw one, or a fan-out that read
    the channel just before it went."""
    return SyncMark.objects.filter(channel_id__in=channel_ids).delete()[0] if channel_ids else 0


def channels_with_due_marks() -> list[int]:
    now = timezone.now()
    return list(
        SyncMark.objects.filter(failed_at__isnull=True, due_at__lte=now)
        .exclude(lease_until__gte=now)
        .values_list("channel_id", flat=True)
        .distinct()
    )


def next_due_in(*, channel_id: int) -> float | None:
    """Seconds until the channel's next mark comes due (0 if one is due now), or None."""
    now = timezone.now()
    due_at = (
        SyncMark.objects.pending()
        .filter(channel_id=channel_id, failed_at__isnull=True)
        .exclude(lease_until__gte=now)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    if due_at is None:
        return None
    return max(0.0, (due_at - now).total_seconds())


# --- threshold rules (channels/services/thresholds.py) ---------------------------------------


def marks_hold(
    *, mark_ids: Sequence[int], claimer: str, reason: str, due_at: datetime | None = None,
    after_delivery_s: float | None = None,
) -> None:
    """Release claimed marks unsent: a threshold rule holds them until `due_at` (or
    `after_delivery_s` after their last delivery), with its reason; `held_since` keeps the
    first hold. A mark a newer change reached meanwhile is due now: the flush weighs it again."""
    if not mark_ids:
        return
    now = timezone.now()
    if after_delivery_s is not None:
        until = ExpressionWrapper(F("delivered_at") + timedelta(seconds=after_delivery_s), output_field=DateTimeField())
    else:
        until = Value(due_at, output_field=DateTimeField())
    SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).update(
        claimed_by=None,
        lease_until=None,
        claimed_version=None,
        due_at=Case(When(version=F("claimed_version"), then=until), default=Value(now, output_field=DateTimeField())),
        held_reason=reason,
        held_since=Coalesce(F("held_since"), Value(now, output_field=DateTimeField())),
    )


def marks_ignore(*, mark_ids: Sequence[int], claimer: str) -> None:
    """Settle claimed marks a rule says are not worth sending (a price moved by less than the
    epsilon): nothing was delivered, so the last delivery time stays. A mark a newer change
    reached meanwhile is due now instead."""
    if not mark_ids:
        return
    now = timezone.now()
    released = dict(claimed_by=None, lease_until=None, claimed_version=None, held_since=None, held_reason=None)
    SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer, version=F("claimed_version")).update(
        **released, due_at=None, urgent_version=None,
        # Settled marks are pruned by delivery time: one never delivered gets one.
        delivered_at=Coalesce(F("delivered_at"), Value(now, output_field=DateTimeField())),
    )
    SyncMark.objects.filter(pk__in=mark_ids, claimed_by=claimer).update(**released, due_at=now)
