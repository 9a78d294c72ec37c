"""Retention: the sync log and the change records are kept `SYNCLOG_RETENTION_DAYS` and pruned
by beat in small batches, each its own short transaction, within a time budget per run."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from inventory.services.retention import changes_prune_batch

from ..models import SyncAttempt
from ..redis_client import get_redis

# Where the pass over old change records stands between runs (lost: the pass starts again).
CHANGES_CURSOR_KEY = "syncsvc:retention:changes_after"


@dataclass(frozen=True)
class PruneOutcome:
    attempts: int  # sync log rows deleted
    changes: int  # change records deleted
    more: bool  # the budget ran out with old rows left: run again soon


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
    attempts, attempts_done = _attempts_prune(cutoff, batch_size, deadline)
    changes, changes_done = _changes_prune(cutoff, batch_size, deadline) if attempts_done else (0, False)
    return PruneOutcome(attempts, changes, not (attempts_done and changes_done))


def _attempts_prune(cutoff: datetime, batch_size: int, deadline: float) -> tuple[int, bool]:
    deleted = 0
    after = None  # the oldest timestamp left: the next batch starts there, past the dead entries
    while True:
        old = SyncAttempt.objects.filter(timestamp__lt=cutoff)
        if after is not None:
            old = old.filter(timestamp__gte=after)
        rows = list(old.order_by("timestamp").values_list("pk", "timestamp")[:batch_size])
        if not rows:
            return deleted, True
        # `DELETE ... WHERE id IN (...)` in autocommit: one short transaction per batch.
        deleted += SyncAttempt.objects.filter(pk__in=[pk for pk, _ in rows]).delete()[0]
        after = rows[-1][1]
        if len(rows) < batch_size:
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
