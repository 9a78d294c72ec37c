"""Nightly catalog refresh: send every SKU's content (title, description, attributes, media
links) to a channel through its bulk path, in chunks, on the low-priority `bulk` queue.

- `catalog_refresh_start` refuses a second active refresh of a channel (409), writes the
  refresh and all its chunks at once (one INSERT ... SELECT: variants by id, `chunk_size`
  each) and queues its first step after commit.
- `catalog_refresh_step` (task `channels.catalog_refresh_step`, queue `bulk`) claims the
  refresh with a lease (SELECT ... FOR UPDATE SKIP LOCKED on a free or expired lease), then,
  within a time budget: polls the started chunks that are due (`adapter.refresh_poll`), starts
  pending ones (`adapter.refresh_start`) while fewer than `CATALOG_REFRESH_PARALLEL` are in
  flight and the channel's bucket is above its floor, and re-queues itself with the shortest
  wait (a poll's `retry_after`, a throttle). It never sleeps.
- Resumable: a chunk's remote state is stored as soon as its job is started; a worker killed
  mid-step leaves a started chunk that the next step polls (never started again) and done
  chunks that are never redone. A chunk whose start was cut off (no remote state stored) is
  started again: `starts` counts the remote jobs a chunk got.
- Price and stock never wait behind it: their flushes run on the `sync` queue, the refresh on
  `bulk`, each step is short, and a chunk only starts when the channel's rate-limit bucket
  holds at least `CATALOG_REFRESH_BUCKET_FLOOR` of its capacity, leaving the rest to them.
- A channel kind without a bulk path (`supports_bulk_refresh` False) but taking content
  (webhook) gets the same chunks sent with `adapter.push` (one call per chunk, batch size).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from inventory.models import Change, Variant
from inventory.selectors import variants_snapshot

from ..adapters.base import ChannelThrottled, Outcome, PushItem, RefreshPoll
from ..adapters.registry import adapter_class
from ..listings import listings_known
from ..models import CatalogRefresh, CatalogRefreshChunk, Channel
from ..ratelimit import bucket_level
from ..wakeups import flag_claim, flags_clear
from .flush import adapter_for_channel
from .mapping import mapping_apply

log = logging.getLogger(__name__)

ACTIVE = (CatalogRefresh.Status.QUEUED, CatalogRefresh.Status.RUNNING)
CONTENT = "content"
FAILURES_KEPT = 50  # per chunk: SKU -> message
MAX_CHUNK_SIZE = 25_000


class RefreshError(Exception):
    """A refresh request refused as a whole; nothing was written. `field` names the input."""

    def __init__(self, field: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def refresh_supported(channel: Channel) -> tuple[bool, str]:
    """(whether the channel's content can be refreshed, why not)."""
    cls = adapter_class(channel.kind)
    if cls.supports_bulk_refresh or CONTENT in cls.aspects:
        return True, ""
    return False, f"the {channel.kind} channel has no bulk path for content yet and takes no content items"


def refresh_chunk_size(channel: Channel) -> int:
    """Items per remote job: the channel's `settings.catalog_refresh.chunk_size`, else the
    adapter's `refresh_chunk_size` (its `batch_size` without a bulk path)."""
    cls = adapter_class(channel.kind)
    configured = ((channel.settings or {}).get("catalog_refresh") or {}).get("chunk_size")
    if configured:
        return int(configured)
    return cls.refresh_chunk_size if cls.supports_bulk_refresh else int((channel.settings or {}).get("batch_size", cls.batch_size))


def catalog_refresh_start(*, channel: Channel, trigger: str = CatalogRefresh.Trigger.MANUAL,
                          requested_by: str = "") -> CatalogRefresh:
    """Plan a refresh of the channel's whole catalog (every variant, by id) and queue it.
    Raises RefreshError: 409 when the channel is disabled, cannot take content, or already has
    an active refresh (nothing written)."""
    if not channel.enabled:
        raise RefreshError("channel", f"{channel.name} is disabled: enable it first", status=409)
    supported, why = refresh_supported(channel)
    if not supported:
        raise RefreshError("channel", why, status=409)
    size = refresh_chunk_size(channel)
    try:
        with transaction.atomic():
            if CatalogRefresh.objects.filter(channel=channel, status__in=ACTIVE).exists():
                raise RefreshError("channel", f"{channel.name} has a catalog refresh in progress", status=409)
            refresh = CatalogRefresh.objects.create(
                channel=channel, trigger=trigger, requested_by=requested_by[:150], chunk_size=size,
                bulk=adapter_class(channel.kind).supports_bulk_refresh, created_at=timezone.now(),
            )
            total = _chunks_plan(refresh, size)
            CatalogRefresh.objects.filter(pk=refresh.pk).update(total=total)
            refresh.total = total
            transaction.on_commit(lambda: catalog_refresh_kick(refresh.pk))
    except IntegrityError:  # a concurrent start won the one-active constraint
        raise RefreshError("channel", f"{channel.name} has a catalog refresh in progress", status=409) from None
    log.info("catalog refresh %s of channel %s (%s): %d SKU(s) in chunks of %d", refresh.pk, channel.name, trigger,
             refresh.total, size)
    return refresh


def _chunks_plan(refresh: CatalogRefresh, size: int) -> int:
    """Every variant in id order, `size` per chunk, in one statement; returns the SKU count."""
    chunks, variants = CatalogRefreshChunk._meta.db_table, Variant._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {chunks} (refresh_id, seq, first_variant_id, last_variant_id, size, status, remote, starts,"
            f" polls, ok, failed, failures, error)"
            f" SELECT %s, grp, MIN(id), MAX(id), COUNT(*), %s, '{{}}', 0, 0, 0, 0, '{{}}', ''"
            f" FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS grp FROM {variants}) numbered"
            f" GROUP BY grp ORDER BY grp",
            [refresh.pk, CatalogRefreshChunk.Status.PENDING, size],
        )
    return CatalogRefreshChunk.objects.filter(refresh=refresh).aggregate(n=Sum("size"))["n"] or 0


# --- stepping -----------------------------------------------------------------------------------


def _kick_flag(refresh_id: int) -> str:
    return f"syncsvc:catalog-refresh:queued:{refresh_id}"


def catalog_refresh_kick(refresh_id: int, *, countdown: float = 0.0) -> bool:
    """Queue a step of the refresh unless one is queued already. Never raises: beat's safety
    net (`catalog_refresh_kick_active`) re-kicks active refreshes."""
    from ..tasks import catalog_refresh_step_task

    try:
        if not flag_claim(_kick_flag(refresh_id), countdown + _lease_s() + 10):
            return False
        catalog_refresh_step_task.apply_async(args=(refresh_id,), countdown=countdown or None)
        return True
    except (RedisError, OperationalError) as exc:
        log.warning("catalog refresh %s: step not queued (%s)", refresh_id, exc)
        return False


def catalog_refresh_kick_active() -> int:
    """Beat: a step of every active refresh whose lease is free (a lost step, a killed worker)."""
    now = timezone.now()
    ids = CatalogRefresh.objects.filter(status__in=ACTIVE).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ).values_list("pk", flat=True)
    return sum(catalog_refresh_kick(pk) for pk in ids)


def _lease_s() -> float:
    return settings.SYNCSVC["CATALOG_REFRESH_LEASE_S"]


@dataclass(frozen=True)
class StepOutcome:
    requeue_in: float | None  # None: finished, gone, or another step holds it


def catalog_refresh_step(*, refresh_id: int) -> StepOutcome:
    """One bounded step of a refresh under its lease (see the module docstring)."""
    flags_clear(_kick_flag(refresh_id))
    claimer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    refresh = _claim(refresh_id, claimer)
    if refresh is None:
        return StepOutcome(None)
    wait: float | None = None
    try:
        wait = _work(refresh, claimer, deadline=time.monotonic() + settings.SYNCSVC["CATALOG_REFRESH_STEP_BUDGET_S"])
    finally:
        CatalogRefresh.objects.filter(pk=refresh.pk, claimed_by=claimer).update(lease_until=None, claimed_by="")
    return StepOutcome(wait)


def _claim(refresh_id: int, claimer: str) -> CatalogRefresh | None:
    now = timezone.now()
    with transaction.atomic():
        refresh = (
            CatalogRefresh.objects.select_for_update(skip_locked=True)
            .filter(pk=refresh_id, status__in=ACTIVE)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if refresh is None:
            return None
        fields = {"claimed_by": claimer, "lease_until": now + timedelta(seconds=_lease_s())}
        if refresh.status == CatalogRefresh.Status.QUEUED:
            fields.update(status=CatalogRefresh.Status.RUNNING, started_at=now)
        CatalogRefresh.objects.filter(pk=refresh.pk).update(**fields)
    refresh.refresh_from_db()
    return refresh


def _work(refresh: CatalogRefresh, claimer: str, *, deadline: float) -> float | None:
    """Poll and start chunks until the deadline; the seconds until the next step (None: done)."""
    channel = refresh.channel
    if not channel.enabled:
        _finish(refresh, status=CatalogRefresh.Status.CANCELLED, detail="the channel was disabled")
        return None
    adapter = adapter_for_channel(channel)
    parallel = max(1, settings.SYNCSVC["CATALOG_REFRESH_PARALLEL"])
    chunks = CatalogRefreshChunk.objects.filter(refresh=refresh)
    while True:
        if not _still_ours(refresh, claimer):
            return None  # cancelled, or the lease was lost
        now = timezone.now()
        waits = []
        for chunk in chunks.filter(status=CatalogRefreshChunk.Status.STARTED).order_by("seq"):
            if chunk.next_poll_at and chunk.next_poll_at > now:
                waits.append((chunk.next_poll_at - now).total_seconds())
                continue
            wait = _poll(adapter, chunk)
            if wait is not None:
                waits.append(wait)
            if time.monotonic() > deadline:
                return 0.0
        in_flight = chunks.filter(status=CatalogRefreshChunk.Status.STARTED).count()
        pending = chunks.filter(status=CatalogRefreshChunk.Status.PENDING)
        started_one = False
        if in_flight < parallel:
            chunk = pending.filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).order_by("seq").first()
            if chunk is not None:
                floor_wait = _bucket_floor_wait(channel)
                if floor_wait > 0:
                    waits.append(floor_wait)
                else:
                    wait = _start(refresh, adapter, chunk)
                    started_one = wait is None
                    if wait is not None:
                        waits.append(wait)
            else:
                later = pending.order_by("next_poll_at").values_list("next_poll_at", flat=True).first()
                if later is not None:
                    waits.append(max(0.0, (later - now).total_seconds()))
        _count(refresh)
        if not chunks.filter(status__in=[CatalogRefreshChunk.Status.PENDING, CatalogRefreshChunk.Status.STARTED]).exists():
            _finish(refresh)
            return None
        if time.monotonic() > deadline:
            return 0.0
        if started_one:
            continue  # maybe another slot is free
        # Nothing more to do now: the next step comes when the soonest poll or start is due.
        return max(0.05, min(waits) if waits else settings.SYNCSVC["CATALOG_REFRESH_POLL_S"])


def _still_ours(refresh: CatalogRefresh, claimer: str) -> bool:
    """Renews the lease; False when the refresh was cancelled or another step took it."""
    return bool(CatalogRefresh.objects.filter(pk=refresh.pk, claimed_by=claimer, status__in=ACTIVE).update(
        lease_until=timezone.now() + timedelta(seconds=_lease_s())
    ))


def _bucket_floor_wait(channel: Channel) -> float:
    """Seconds until the channel's default bucket holds the refresh's floor (0: start now)."""
    floor = settings.SYNCSVC["CATALOG_REFRESH_BUCKET_FLOOR"]
    if floor <= 0:
        return 0.0
    rate, burst = adapter_class(channel.kind).bucket_defaults(channel.settings or {})["default"]
    level = bucket_level(f"{channel.pk}:default", rate_per_s=rate, burst=burst)
    if level is None:
        return 0.0
    tokens, capacity, rate_now = level
    short = floor * capacity - tokens
    return 0.0 if short <= 0 else short / max(rate_now, 1e-6)


def chunk_items(channel: Channel, chunk: CatalogRefreshChunk) -> list[PushItem]:
    """The content items of a chunk's variants as they are now (the same PushItem content a
    flush sends); variants deleted since planning are left out."""
    variant_ids = list(
        Variant.objects.filter(pk__gte=chunk.first_variant_id, pk__lte=chunk.last_variant_id)
        .order_by("pk").values_list("pk", flat=True)
    )
    snapshots = variants_snapshot(variant_ids=variant_ids)
    known = listings_known(channel=channel, variant_ids=variant_ids)
    versions = dict(
        Change.objects.filter(variant_id__in=variant_ids).values("variant_id").annotate(v=Max("pk"))
        .values_list("variant_id", "v")
    )
    items = []
    for pk in variant_ids:
        snapshot = snapshots.get(pk)
        if snapshot is None:
            continue
        items.append(PushItem(
            sku=snapshot.sku, aspect=CONTENT, version=versions.get(pk, 0), external_ids=known.get(pk, {}),
            price=snapshot.price, compare_at_price=snapshot.compare_at_price,
            available=channel.shown_available(snapshot.sellable), handle=snapshot.handle, title=snapshot.title,
            description=snapshot.description, attributes=snapshot.attributes,
        ))
    # The attributes as the channel's fields (its mappings); the unmapped ones are flagged.
    return mapping_apply(channel=channel, items=items)


def _start(refresh: CatalogRefresh, adapter, chunk: CatalogRefreshChunk) -> float | None:
    """Start the chunk's remote job (or push it, without a bulk path); None when it started or
    finished, else the seconds to wait before trying again."""
    items = chunk_items(refresh.channel, chunk)
    now = timezone.now()
    # Counted before the call: a start a crash cut off shows as a second start.
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(starts=chunk.starts + 1, started_at=chunk.started_at or now)
    chunk.starts += 1
    if not items:
        _chunk_done(chunk, RefreshPoll(done=True))
        return None
    if refresh.channel.mode == Channel.Mode.SHADOW:
        # A shadow channel gets no call at all: the chunk counts as sent, as its flushes do.
        _chunk_done(chunk, RefreshPoll(done=True, ok=tuple(item.sku for item in items), state={"shadow": True}))
        return None
    try:
        if not refresh.bulk:
            return _push_chunk(refresh, adapter, chunk, items)
        state = adapter.refresh_start(items)
    except ChannelThrottled as throttled:
        _chunk_later(chunk, throttled.retry_after, f"throttled: {throttled}", count=False)
        return throttled.retry_after
    except Exception as error:  # noqa: BLE001 - bounded: the chunk fails after a few tries
        return _chunk_error(chunk, items, error)
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
        status=CatalogRefreshChunk.Status.STARTED, remote=state, error="", next_poll_at=now,
    )
    log.info("catalog refresh %s chunk %s: started (%d items) %s", refresh.pk, chunk.seq, len(items), state)
    return None


def _push_chunk(refresh: CatalogRefresh, adapter, chunk: CatalogRefreshChunk, items: list[PushItem]) -> float | None:
    """No bulk path: the chunk's content items in one push; throttled or retryable items make
    the chunk wait and go again (content is idempotent)."""
    results = adapter.push(items)
    waits = [r.retry_after or 1.0 for r in results if r.outcome in (Outcome.THROTTLED, Outcome.RETRY)]
    if waits:
        _chunk_later(chunk, max(waits), next(f"{r.code}: {r.message}" for r in results if not r.ok), count=True)
        return max(waits)
    _chunk_done(chunk, RefreshPoll(
        done=True, ok=tuple(r.sku for r in results if r.ok),
        failed={r.sku: f"{r.code}: {r.message}"[:255] for r in results if not r.ok},
    ))
    return None


def _poll(adapter, chunk: CatalogRefreshChunk) -> float | None:
    """Ask the channel once where the chunk's job is; the seconds until the next poll (None:
    the chunk finished)."""
    try:
        answer = adapter.refresh_poll(dict(chunk.remote))
    except ChannelThrottled as throttled:
        CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
            next_poll_at=timezone.now() + timedelta(seconds=throttled.retry_after)
        )
        return throttled.retry_after
    except Exception as error:  # noqa: BLE001 - bounded like a start
        polls_left = settings.SYNCSVC["CATALOG_REFRESH_MAX_ATTEMPTS"] * 10 - chunk.polls
        CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
            polls=chunk.polls + 1, error=f"poll: {error}"[:500],
            next_poll_at=timezone.now() + timedelta(seconds=settings.SYNCSVC["CATALOG_REFRESH_POLL_S"] * 2),
        )
        if polls_left <= 1:
            _chunk_failed(chunk, chunk_items(chunk.refresh.channel, chunk), f"polling failed: {error}")
            return None
        return settings.SYNCSVC["CATALOG_REFRESH_POLL_S"] * 2
    state = answer.state or chunk.remote
    if answer.done:
        CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(remote=state, polls=chunk.polls + 1)
        _chunk_done(chunk, answer)
        return None
    wait = answer.retry_after if answer.retry_after is not None else settings.SYNCSVC["CATALOG_REFRESH_POLL_S"]
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
        remote=state, polls=chunk.polls + 1, next_poll_at=timezone.now() + timedelta(seconds=wait),
    )
    return wait


def _chunk_done(chunk: CatalogRefreshChunk, answer: RefreshPoll) -> None:
    failures = dict(list(answer.failed.items())[:FAILURES_KEPT])
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).exclude(status=CatalogRefreshChunk.Status.DONE).update(
        status=CatalogRefreshChunk.Status.DONE, ok=len(answer.ok), failed=len(answer.failed), failures=failures,
        finished_at=timezone.now(), next_poll_at=None, error="",
    )
    log.info("catalog refresh %s chunk %s: done, %d ok, %d failed", chunk.refresh_id, chunk.seq, len(answer.ok),
             len(answer.failed))


def _chunk_later(chunk: CatalogRefreshChunk, wait: float, error: str, *, count: bool) -> None:
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
        status=CatalogRefreshChunk.Status.PENDING, error=error[:500],
        next_poll_at=timezone.now() + timedelta(seconds=wait),
        **({} if count else {"starts": max(0, chunk.starts - 1)}),  # a throttled start never reached the channel
    )


def _chunk_error(chunk: CatalogRefreshChunk, items: Sequence[PushItem], error: Exception) -> float | None:
    log.warning("catalog refresh %s chunk %s: start failed (%s)", chunk.refresh_id, chunk.seq, error)
    if chunk.starts >= settings.SYNCSVC["CATALOG_REFRESH_MAX_ATTEMPTS"]:
        _chunk_failed(chunk, items, str(error))
        return None
    wait = settings.SYNCSVC["CATALOG_REFRESH_POLL_S"] * 2 ** chunk.starts
    _chunk_later(chunk, wait, str(error), count=True)
    return wait


def _chunk_failed(chunk: CatalogRefreshChunk, items: Sequence[PushItem], message: str) -> None:
    CatalogRefreshChunk.objects.filter(pk=chunk.pk).update(
        status=CatalogRefreshChunk.Status.FAILED, failed=len(items), error=message[:500], finished_at=timezone.now(),
        failures={item.sku: message[:255] for item in list(items)[:FAILURES_KEPT]}, next_poll_at=None,
    )


def _count(refresh: CatalogRefresh) -> None:
    totals = CatalogRefreshChunk.objects.filter(refresh=refresh).aggregate(ok=Sum("ok"), failed=Sum("failed"))
    CatalogRefresh.objects.filter(pk=refresh.pk).update(done=totals["ok"] or 0, failed=totals["failed"] or 0)


def _finish(refresh: CatalogRefresh, *, status: str | None = None, detail: str = "") -> None:
    _count(refresh)
    refresh.refresh_from_db()
    if status is None:
        status = CatalogRefresh.Status.FAILED if refresh.failed else CatalogRefresh.Status.DONE
        detail = (f"{refresh.failed} SKU(s) failed: see the chunks" if refresh.failed
                  else f"all {refresh.done} SKU(s) refreshed")
    CatalogRefresh.objects.filter(pk=refresh.pk, status__in=ACTIVE).update(
        status=status, finished_at=timezone.now(), detail=detail[:1000],
    )
    log.info("catalog refresh %s of channel %s %s: %s", refresh.pk, refresh.channel.name, status, detail)


def catalog_refresh_cancel(*, refresh: CatalogRefresh) -> bool:
    """Stop the refresh: no chunk starts after this (a remote job in flight runs out on its own)."""
    return bool(CatalogRefresh.objects.filter(pk=refresh.pk, status__in=ACTIVE).update(
        status=CatalogRefresh.Status.CANCELLED, finished_at=timezone.now(), detail="cancelled",
    ))


# --- progress ------------------------------------------------------------------------------------


def catalog_refresh_progress(refresh: CatalogRefresh) -> dict:
    """{status, total, done, failed, eta_s, rate_per_s, chunks: {pending, started, done, failed}, ...}."""
    counts = dict(
        CatalogRefreshChunk.objects.filter(refresh=refresh).values_list("status").annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    totals = CatalogRefreshChunk.objects.filter(refresh=refresh).aggregate(ok=Sum("ok"), failed=Sum("failed"))
    done, failed = totals["ok"] or 0, totals["failed"] or 0
    finished = done + failed
    remaining = max(0, refresh.total - finished)
    started = refresh.started_at
    elapsed = ((refresh.finished_at or timezone.now()) - started).total_seconds() if started else 0.0
    rate = finished / elapsed if finished and elapsed > 0 else None
    active = refresh.status in ACTIVE
    return {
        "refresh": refresh.pk,
        "channel": refresh.channel_id,
        "status": refresh.status,
        "trigger": refresh.trigger,
        "requested_by": refresh.requested_by,
        "bulk": refresh.bulk,
        "total": refresh.total,
        "done": done,
        "failed": failed,
        "percent": round(100.0 * finished / refresh.total, 1) if refresh.total else 100.0,
        "rate_per_s": round(rate, 2) if rate else None,
        "eta_s": (round(remaining / rate, 1) if rate else None) if active and remaining else 0.0,
        "chunk_size": refresh.chunk_size,
        "chunks": {status: counts.get(status, 0) for status in CatalogRefreshChunk.Status.values},
        "detail": refresh.detail,
        "created_at": refresh.created_at,
        "started_at": refresh.started_at,
        "finished_at": refresh.finished_at,
    }
