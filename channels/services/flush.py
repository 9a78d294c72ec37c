"""Deliver what a channel is owed: claim due marks, read current state, push one batch,
log one attempt per SKU, clear only what was delivered."""
from __future__ import annotations

import functools
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.selectors import variants_snapshot
from syncsvc.logcontext import log_context

from ..adapters.base import ChannelConfig, Outcome, PushItem, PushResult
from ..adapters.registry import adapter_class
from ..context import RedisChannelContext
from ..listings import listings_known, listings_record
from ..marks import (
    ClaimedMark,
    marks_claim,
    marks_clear,
    marks_drop,
    marks_give_up,
    marks_lock,
    marks_retry_later,
    next_due_in,
)
from ..metrics.counters import attempts_count
from ..models import Channel, SyncAttempt
from ..safety import shown_quantities
from .circuit import batch_verdict, circuit_gate, circuit_record, circuit_release
from .mapping import mapping_apply
from .thresholds import ignored_attempts, thresholds_apply, thresholds_settle

log = logging.getLogger(__name__)

# A flush re-queues itself for work due within this window; later work is the sweep's.
REQUEUE_HORIZON_S = 30.0


@dataclass(frozen=True)
class FlushOutcome:
    delivered: int = 0
    failed: int = 0
    requeue_in: float | None = None
    # The channel is gone or disabled, or its circuit is open: nothing to re-queue (the sweep
    # wakes it when its probe is due).
    stopped: bool = False


def channel_config(channel: Channel) -> ChannelConfig:
    return ChannelConfig(
        id=channel.pk,
        name=channel.name,
        kind=channel.kind,
        base_url=channel.base_url,
        credentials=channel.credentials,
        settings=dict(channel.settings),
    )


def adapter_for_channel(channel: Channel):
    """The channel's adapter, with its global rate limits and shared cache."""
    config = channel_config(channel)
    cls = adapter_class(channel.kind)
    return cls(config, RedisChannelContext(channel.pk, cls.bucket_defaults(config.settings)))


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter, capped: base * 2**attempts, times 0.5..1."""
    config = settings.SYNCSVC
    return min(config["RETRY_CAP_S"], config["RETRY_BASE_S"] * 2**attempts) * random.uniform(0.5, 1.0)


def flush_channel(*, channel_id: int, enqueued_at: float | None = None) -> FlushOutcome:
    """Push a channel's due marks in batches, within its global rate limit and a time budget.

    Never sleeps: when the bucket is empty or the channel asks us to wait, the marks stay due
    at the time allowed and the caller re-queues the flush (`requeue_in`).
    """
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        return FlushOutcome(stopped=True)
    circuit = circuit_gate(channel_id=channel.pk)
    if not circuit.allowed:
        return FlushOutcome(stopped=True)
    try:
        return _flush(channel, circuit, enqueued_at)
    finally:
        circuit_release(gate=circuit)


def _in_log_context(*, batch: bool):
    """Every log line of a flush names its channel; of a batch (its marks the third argument),
    also the change ids the batch carries (the marks' versions)."""

    def decorate(work):
        @functools.wraps(work)
        def logged(channel, *args, **kwargs):
            change_ids = [m.version for m in args[1]] if batch else None
            with log_context(channel=channel.name, change_ids=change_ids):
                return work(channel, *args, **kwargs)

        return logged

    return decorate


@_in_log_context(batch=False)
def _flush(channel: Channel, circuit, enqueued_at: float | None) -> FlushOutcome:
    adapter = adapter_for_channel(channel)
    batch_size = int(channel.settings.get("batch_size", adapter.batch_size))
    config = settings.SYNCSVC
    claimer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + config["FLUSH_BUDGET_S"]
    delivered = failed = 0
    for _ in range(circuit.batches(config["FLUSH_MAX_BATCHES"])):
        if time.monotonic() > deadline:
            return FlushOutcome(delivered, failed, 0.0)
        limit = circuit.batch_limit(batch_size)
        marks = marks_claim(channel_id=channel.pk, claimer=claimer, limit=limit, lease_s=config["LEASE_S"])
        if not marks:
            break
        ok, bad, results = _deliver_batch(channel, adapter, marks, claimer, enqueued_at, probe=circuit.probe)
        circuit = circuit_record(gate=circuit, verdict=batch_verdict(results), detail=_first_error(results))
        delivered += ok
        failed += bad
        if not circuit.allowed:
            return FlushOutcome(delivered, failed, stopped=True)
        if bad:
            break  # the channel is struggling: leave the rest to the backoff schedule
    due_in = next_due_in(channel_id=channel.pk)
    requeue = due_in if due_in is not None and due_in <= REQUEUE_HORIZON_S else None
    return FlushOutcome(delivered, failed, requeue)


def _items(
    channel: Channel, marks: list[ClaimedMark]
) -> tuple[list[PushItem], dict[tuple[str, str], ClaimedMark], list[int]]:
    """The items to push, the mark of each (by SKU and aspect), and the marks whose variant is gone."""
    variant_ids = {m.variant_id for m in marks}
    snapshots = variants_snapshot(variant_ids=variant_ids)
    known = listings_known(channel=channel, variant_ids=variant_ids)
    # What the channel is shown (its locations, its safety stock, sized or not), for the
    # stock items; other aspects carry the plain figure.
    stock_ids = [m.variant_id for m in marks if m.aspect == "inventory" and m.variant_id in snapshots]
    shown = shown_quantities(
        channel, {pk: (snapshots[pk].on_hand, snapshots[pk].reserved) for pk in stock_ids}, stock_ids
    ) if stock_ids else {}
    items, by_key, gone = [], {}, []
    for mark in marks:
        snapshot = snapshots.get(mark.variant_id)
        if snapshot is None:
            gone.append(mark.id)
            continue
        items.append(
            PushItem(
                sku=snapshot.sku,
                aspect=mark.aspect,
                version=mark.version,
                price=snapshot.price,
                compare_at_price=snapshot.compare_at_price,
                available=shown[mark.variant_id] if mark.variant_id in shown else channel.shown_available(snapshot.sellable),
                handle=snapshot.handle,
                title=snapshot.title,
                description=snapshot.description,
                attributes=snapshot.attributes,
                external_ids=known.get(mark.variant_id, {}),
            )
        )
        by_key[(snapshot.sku, mark.aspect)] = mark
    return items, by_key, gone


def _first_error(results: list[PushResult]) -> str:
    return next((f"{r.code}: {r.message}"[:255] for r in results if not r.ok), "")


@_in_log_context(batch=True)
def _deliver_batch(channel, adapter, marks, claimer, enqueued_at, *, probe: bool = False):
    """Push one batch, log it, settle its marks; returns (delivered, not delivered, results).
    A circuit breaker's `probe` counts no attempt and gives nothing up for a retryable failure
    (the outage is the channel's)."""
    started_at = timezone.now()
    items, by_key, gone = _items(channel, marks)
    items = mapping_apply(channel=channel, items=items)  # content attributes as the channel's fields
    # The variant was deleted since: nothing to send. The ORM's cascade usually removed its
    # marks already; one left behind (the table has no foreign keys, see migration 0004)
    # would otherwise come due again at every lease.
    marks_drop(mark_ids=gone, claimer=claimer)
    # Threshold rules: small changes held for the next batch or ignored, the minimum interval.
    verdicts = thresholds_apply(channel=channel, items=items, marks=by_key)
    items = verdicts.send
    previews: dict[str, dict] = {}
    if not items:
        results = []
    elif channel.mode == Channel.Mode.SHADOW:
        # No call to the store at all: what the push would send is logged on the attempts.
        previews = adapter.preview(items)
        results = [PushResult(i.sku, i.aspect, Outcome.OK, code="shadow", acknowledged_at=timezone.now()) for i in items]
    else:
        results = adapter.push(items)
    enqueued = datetime.fromtimestamp(enqueued_at, dt_timezone.utc) if enqueued_at else None
    attempts, delivered, throttled, retry, give_up = [], [], [], [], []
    retry_delay = 0.0
    for result, item in zip(results, items):
        mark = by_key[(result.sku, result.aspect)]
        attempts.append(_attempt_row(channel, mark, item, result, enqueued, started_at, previews.get(item.sku)))
        if result.ok:
            delivered.append(mark.id)
        elif result.outcome is Outcome.THROTTLED:
            throttled.append(mark.id)
            retry_delay = max(retry_delay, result.retry_after or 1.0)
        elif result.outcome is Outcome.PERMANENT or (not probe and mark.attempts + 1 >= settings.SYNCSVC["MAX_ATTEMPTS"]):
            give_up.append((mark.id, result))
        else:
            retry.append(mark.id)
            retry_delay = max(retry_delay, result.retry_after or 0.0, backoff_seconds(mark.attempts))
    # The log, the listings and the marks' new states commit together: one commit (one WAL
    # flush) per batch instead of one per statement, and a crash in between leaves the
    # marks claimed, to be sent again when the lease ends, never settled without a log row.
    with transaction.atomic():
        # The marks first, in the order every writer of marks takes them: the statements
        # below then cannot deadlock with a concurrent fan-out (a bulk import's upsert).
        marks_lock(mark_ids=[m.id for m in marks])
        attempts += ignored_attempts(channel=channel, verdicts=verdicts, marks=by_key, started_at=started_at)
        SyncAttempt.objects.bulk_create(attempts)
        listings_record(
            channel=channel, results=[(by_key[(r.sku, r.aspect)].variant_id, r) for r in results],
            items={(i.sku, i.aspect): i for i in items},
        )
        thresholds_settle(verdicts=verdicts, marks=by_key, claimer=claimer)
        marks_clear(mark_ids=delivered, claimer=claimer, hot_delay_s=settings.SYNCSVC["HOT_COALESCE_S"])
        # Earlier failures of what was delivered now are resolved (a mark that failed keeps
        # its last error until it is delivered, also through a resync's fresh retry budget).
        had_failed = {m.id for m in marks if m.attempts or m.last_error}
        if had_failed.intersection(delivered):
            SyncAttempt.objects.filter(
                channel=channel, resolved_at__isnull=True, status__in=[SyncAttempt.Status.FAILURE, SyncAttempt.Status.THROTTLED],
                sku__in=[r.sku for r in results if r.ok],
            ).update(resolved_at=timezone.now())
        error = _first_error(results)
        marks_retry_later(mark_ids=throttled, claimer=claimer, delay_s=retry_delay, error=error, count_attempt=False)
        marks_retry_later(mark_ids=retry, claimer=claimer, delay_s=retry_delay, error=error, count_attempt=not probe)
        for mark_id, result in give_up:
            marks_give_up(mark_ids=[mark_id], claimer=claimer, error=f"{result.code}: {result.message}")
    attempts_count(attempts=attempts)  # after the commit: a rolled-back batch is never counted
    log.info("channel %s: %d of %d items delivered", channel.name, len(delivered), len(items))
    for _, result in give_up:
        mark = by_key[(result.sku, result.aspect)]
        with log_context(sku=result.sku, change_ids=[mark.version]):
            log.warning("channel %s: gave up on %s %s after %d attempts: %s %s", channel.name, result.sku,
                        result.aspect, mark.attempts + 1, result.code, result.message)
    if len(delivered) < len(items):
        log.warning("channel %s: %d of %d items not delivered (%s)", channel.name, len(items) - len(delivered), len(items), error)
    return len(delivered), len(items) - len(delivered), results


def _attempt_row(channel, mark, item, result: PushResult, enqueued, started_at, payload=None) -> SyncAttempt:
    if result.ok:
        status = SyncAttempt.Status.IGNORED if result.code == "shadow" else SyncAttempt.Status.SUCCESS
    elif result.outcome is Outcome.THROTTLED:
        status = SyncAttempt.Status.THROTTLED
    else:
        status = SyncAttempt.Status.FAILURE
    acknowledged = result.acknowledged_at
    latency = (acknowledged - mark.first_committed_at).total_seconds() * 1000 if acknowledged else None
    return SyncAttempt(
        channel=channel,
        variant_id=mark.variant_id,
        sku=item.sku,
        event_type=item.aspect,
        status=status,
        error_code=result.code if not result.ok or result.code == "shadow" else "",
        error_message=result.message,
        retry_count=mark.attempts,
        version=mark.version,
        committed_at=mark.first_committed_at,
        enqueued_at=max(enqueued, mark.first_committed_at) if enqueued else None,
        started_at=started_at,
        acknowledged_at=acknowledged,
        latency_ms=latency,
        timestamp=timezone.now(),
        payload=payload,
    )
