"""Retention: the sync log, the change records and the settled inbound events are kept
`SYNCLOG_RETENTION_DAYS` and pruned by beat in small batches, each its own short transaction,
within a time budget per run.

Inbound events are pruned once settled (applied or ignored); those waiting to be applied or
for a person stay. What an order did lives on in its order lines and the ledger, which are
never pruned, so a delivery of an order after its event is gone still counts once. The newest
event of each channel's order poll stays too: it is the poll's cursor (`polling.py`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from inventory.services.retention import changes_prune_batch

from ..inbound.registry import poll_topic, polled_kinds
from ..models import InboundEvent, SyncAttempt
from ..redis_client import get_redis

# Where the pass over old change records stands between runs (lost: the pass starts again).
CHANGES_CURSOR_KEY = "syncsvc:retention:changes_after"


@dataclass(frozen=True)
class PruneOutcome:
    attempts: int  # sync log rows deleted
    changes: int  # change records deleted
    more: bool  # the budget ran out with old rows left: run again soon
    inbound: int = 0  # settled inbound events deleted


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.SYNCSVC["SYNCLOG_RETENTION_DAYS"])


def synclog_prune(
    *, now: datetime | None = None, batch_size: int | None = None, budget_s: float | None = None
) -> PruneOutcome:
    """Delete sync log rows (every status, resolved or not: the age alone decides) older than
    the retention, oldest first, then superseded change records older than it, in batches of
    `batch_size`, until nothing old is left or `budget_s` is spent."""
    config = settings.SYNCSVC
    cutoff = retention_cutoff(now=now)
    batch_size = batch_size or config["SYNCLOG_PRUNE_BATCH"]
    deadline = time.monotonic() + (config["SYNCLOG_PRUNE_BUDGET_S"] if budget_s is None else budget_s)
    attempts, attempts_done = _oldest_first_prune(SyncAttempt.objects.all(), "timestamp", cutoff, batch_size, deadline)
    changes, changes_done = _changes_prune(cutoff, batch_size, deadline) if attempts_done else (0, False)
    inbound, inbound_done = (
        _oldest_first_prune(_settled_inbound(), "received_at", cutoff, batch_size, deadline) if changes_done else (0, False)
    )
    return PruneOutcome(attempts, changes, not (attempts_done and changes_done and inbound_done), inbound)


def _settled_inbound():
    """Inbound events that may go: settled, and not a poll's cursor."""
    cursors = []
    for kind in polled_kinds():
        topic = poll_topic(kind)
        newest = (
            InboundEvent.objects.filter(channel__kind=kind, topic=topic).exclude(triggered_at=None)
            .values("channel_id").annotate(at=Max("triggered_at")).order_by()
        )
        cursors += [Q(channel_id=row["channel_id"], topic=topic, triggered_at=row["at"]) for row in newest]
    settled = InboundEvent.objects.filter(status__in=(InboundEvent.Status.APPLIED, InboundEvent.Status.IGNORED))
    for cursor in cursors:
        settled = settled.exclude(cursor)
    return settled


def _oldest_first_prune(rows, field: str, cutoff: datetime, batch_size: int, deadline: float) -> tuple[int, bool]:
    """Delete `rows` whose `field` is before `cutoff`, oldest first, a batch at a time."""
    deleted = 0
    after = None  # the oldest time left: the next batch starts there, past the deleted ones
    while True:
        old = rows.filter(**{f"{field}__lt": cutoff})
        if after is not None:
            old = old.filter(**{f"{field}__gte": after})
        batch = list(old.order_by(field).values_list("pk", field)[:batch_size])
        if not batch:
            return deleted, True
        # `DELETE ... WHERE id IN (...)` in autocommit: one short transaction per batch.
        deleted += rows.model.objects.filter(pk__in=[pk for pk, _ in batch]).delete()[0]
        after = batch[-1][1]
        if len(batch) < batch_size:
            return deleted, True
        if time.monotonic() > deadline:
            return deleted, False


def _changes_prune(cutoff: datetime, batch_size: int, deadline: float) -> tuple[int, bool]:
    redis = get_redis()
    after = int(redis.get(CHANGES_CURSOR_KEY) or 0)
    deleted = 0
    while True:
        batch = changes_prune_batch(older_than=cutoff, after_id=after, batch_size=batch_size)
        deleted += batch.deleted
        after = batch.after_id
        if batch.done:
            redis.delete(CHANGES_CURSOR_KEY)
            return deleted, True
        if time.monotonic() > deadline:
            redis.set(CHANGES_CURSOR_KEY, after, ex=7 * 86_400)
            return deleted, False
