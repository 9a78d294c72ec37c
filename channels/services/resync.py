"""Forced resync: owe a channel the current state of some or all SKUs, follow the flushes as
they deliver it at the channel's own rate, then read each SKU back and say whether the
channel shows what the PIM has.

- `resync_start` checks the request, writes the job and its items, and makes the SKUs owed
  through the ordinary marks (at the latest Change id, given-up marks revived, due now): the
  flushes do the sending, under the channel's rate limit, like any other change.
- `resync_advance` (a task, re-queued while the job is active; beat re-kicks lost ones) moves
  the job on: an item is delivered when every aspect's mark was settled (or a success attempt
  logged) since the job began, failed when a mark gave up; delivered items are then read
  back in batches with the adapter's `fetch` (a throttled read reschedules, never sleeps) and
  become verified or mismatch. The delivering attempts get `verified_at`.
- `resync_progress` says how far it is, with an ETA from the observed rate (or, before there
  is one, from the channel's rate limit).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from inventory.models import Change, Variant

from ..adapters.registry import adapter_class
from ..marks import db_time, marks_upsert
from ..models import (
    Alert,
    Channel,
    Drift,
    Incident,
    ResyncItem,
    ResyncJob,
    SyncAttempt,
    SyncMark,
)
from ..wakeups import flag_claim, flags_clear, wake_channel
from .alerts import health_of
from .circuit import circuit_probe_now
from .drift import drift_alert_update, drifts_record, drifts_resolve
from .flush import adapter_for_channel
from .incidents import (
    incident_add,
    incident_close_if_recovered,
    incident_for_resync,
    incidents_close_recovered,
    incidents_for_open_alerts,
)
from .live_values import (
    ReadFailed,
    ReadThrottled,
    can_read_back,
    differences_of,
    expected_values,
    live_read,
    read_batch_size,
    read_rate_per_s,
)

log = logging.getLogger(__name__)

ACTIVE = (ResyncJob.Status.QUEUED, ResyncJob.Status.RUNNING, ResyncJob.Status.VERIFYING)
FINAL_ITEM_STATES = (ResyncItem.State.VERIFIED, ResyncItem.State.MISMATCH, ResyncItem.State.FAILED)
CHUNK = 1000  # items looked at per query
STEP_ITEMS = 5000  # pending items a step checks for delivery
CREATE_BATCH = 5000
VERIFY_GIVE_UP_S = 600  # a channel that cannot be read back this long after delivery: the item fails
# SKUs per second a push of one aspect costs in the channel's bucket units, by kind (for the
# ETA before anything was delivered): Shopify's bulk mutations cost about a point per line,
# the REST kinds send 100 per call (WooCommerce, Magento), Amazon one PATCH per SKU.
SKUS_PER_PUSH_UNIT = {"shopify": 1.0, "woocommerce": 100.0, "magento": 50.0, "amazon": 1.0, "webhook": 100.0}


class ResyncError(Exception):
    """A resync request refused as a whole; nothing was written. `field` names the input."""

    def __init__(self, field: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def resync_aspects(channel: Channel, aspects: Sequence[str] | None) -> list[str]:
    supported = adapter_class(channel.kind).aspects
    if not aspects:
        return sorted(supported)
    unknown = sorted(set(aspects) - supported)
    if unknown:
        raise ResyncError("aspects", f"the {channel.kind} channel takes {', '.join(sorted(supported))}; not {', '.join(unknown)}")
    return sorted(set(aspects))


def _variants(skus: Sequence[str] | None, all_skus: bool) -> list[tuple[int, str]]:
    if all_skus:
        return list(Variant.objects.order_by("pk").values_list("pk", "sku"))
    wanted = list(dict.fromkeys(skus or ()))
    found = dict(Variant.objects.filter(sku__in=wanted).values_list("sku", "pk"))
    unknown = [sku for sku in wanted if sku not in found]
    if unknown:
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise ResyncError("skus", f"unknown SKU(s): {', '.join(unknown[:20])}{more}")
    return sorted((pk, sku) for sku, pk in found.items())


def _check_request(channel: Channel, skus, all_skus: bool) -> None:
    if not channel.enabled:
        raise ResyncError("channel", f"{channel.name} is disabled: enable it first, a resync would wait undelivered",
                          status=409)
    if all_skus and skus:
        raise ResyncError("skus", "give either a list of SKUs or all: true, not both")
    if all_skus:
        return
    if skus is None:
        raise ResyncError("skus", "a list of SKUs is required (or all: true)")
    if isinstance(skus, str) or not all(isinstance(sku, str) and sku for sku in skus):
        raise ResyncError("skus", "must be a list of SKUs")
    if not skus:
        raise ResyncError("skus", "must not be empty")
    limit = settings.SYNCSVC["RESYNC_MAX_SKUS"]
    if len(skus) > limit:
        raise ResyncError("skus", f"at most {limit} SKUs per request ({len(skus)} given); use all: true for everything")


def resync_start(
    *, channel: Channel, skus: Sequence[str] | None = None, all_skus: bool = False, aspects: Sequence[str] | None = None,
    requested_by: str = "", reason: str = "", incident: Incident | None = None,
) -> ResyncJob:
    """Resync `skus` (or every SKU) of the channel: the job, its items and the owed marks in
    one transaction; the channel and the job's progress are woken after commit. Raises
    ResyncError (nothing written) for a disabled channel, bad input or unknown SKUs. A resync
    of SKUs that failed on the channel records the incident it repairs."""
    _check_request(channel, skus, all_skus)
    aspects = resync_aspects(channel, aspects)
    variants = _variants(skus, all_skus)
    with transaction.atomic():
        now = timezone.now()
        if incident is None:
            incident = incident_for_resync(channel=channel, skus=None if all_skus else [sku for _, sku in variants])
        elif not all_skus:
            incident_add(incident=incident, skus=[sku for _, sku in variants])
        if incident is not None:
            incident.channels.add(channel)
        job = ResyncJob.objects.create(
            channel=channel, all_skus=all_skus, aspects=aspects, requested_by=requested_by[:150], reason=reason[:255],
            total=len(variants), created_at=now, incident=incident,
        )
        _items_create(job, variants, all_skus=all_skus, now=now)
        if not all_skus:  # the whole catalog is owed by the first step (seconds for 100,000 SKUs)
            _owe(channel, [pk for pk, _ in variants], aspects, all_skus=False, now=now)
        # Asking for a resync says the channel should be back: an open breaker probes now
        # instead of holding the resync until its next scheduled probe (up to minutes).
        circuit_probe_now(channel_id=channel.pk)
        transaction.on_commit(lambda: (wake_channel(channel.pk), resync_kick(job.pk)))
    log.info("resync %s of channel %s: %d SKU(s), %s", job.pk, channel.name, job.total, ", ".join(aspects))
    return job


def _items_create(job: ResyncJob, variants: list[tuple[int, str]], *, all_skus: bool, now) -> None:
    """One item per SKU: for the whole catalog one INSERT ... SELECT (100,000 rows in about a
    second, where the ORM's bulk_create took five), else a bulk_create of the listed ones."""
    if not all_skus:
        ResyncItem.objects.bulk_create(
            (ResyncItem(job=job, variant_id=pk, sku=sku, updated_at=now) for pk, sku in variants), batch_size=CREATE_BATCH
        )
        return
    items, variant_table = ResyncItem._meta.db_table, Variant._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {items} (job_id, variant_id, sku, state, detail, updated_at)"
            f" SELECT %s, id, sku, %s, '', %s FROM {variant_table} WHERE id <= %s ORDER BY id",
            [job.pk, ResyncItem.State.PENDING, db_time(now), variants[-1][0] if variants else 0],
        )
    total = ResyncItem.objects.filter(job=job).count()
    if total != job.total:  # variants added meanwhile at ids below the last one read
        ResyncJob.objects.filter(pk=job.pk).update(total=total)
        job.total = total


def _latest_versions(variant_ids: list[int], aspects: list[str], *, all_skus: bool) -> dict[tuple[int, str], int]:
    changes = Change.objects.filter(aspect__in=aspects)
    if not all_skus:
        changes = changes.filter(variant_id__in=variant_ids)
    latest = changes.values("variant_id", "aspect").annotate(version=Max("pk"))
    return {(row["variant_id"], row["aspect"]): row["version"] for row in latest}


def _owe(channel: Channel, variant_ids: list[int], aspects: list[str], *, all_skus: bool, now) -> None:
    """Marks for every (variant, aspect) at the latest Change id (so the flush sends current
    state and clears nothing newer), then due now: revived if they gave up, out of any retry
    backoff or hot window. Marks in flight keep their lease."""
    versions = _latest_versions(variant_ids, aspects, all_skus=all_skus)
    for start in range(0, len(variant_ids), 10 * CHUNK):
        chunk = variant_ids[start:start + 10 * CHUNK]
        for aspect in aspects:
            # Urgent: an operator's resync skips the channel's threshold rules.
            marks_upsert(channel_ids=[channel.pk], aspect=aspect, urgent=True,
                         changes=[(pk, versions.get((pk, aspect), 0), now) for pk in chunk])
    # The upsert made new and settled marks due now; what it left waiting (a retry backoff, a
    # hot window) is pulled in, and in-flight marks keep their lease.
    waiting = SyncMark.objects.filter(channel=channel, aspect__in=aspects).filter(
        Q(due_at__gt=now) | Q(attempts__gt=0) | Q(failed_at__isnull=False)
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    if not all_skus:
        waiting = waiting.filter(variant_id__in=variant_ids)
    # A fresh retry budget; `last_error` stays: it is how the flush knows the delivery resolves
    # earlier failures in the sync log.
    waiting.update(due_at=now, attempts=0, failed_at=None)


# --- progress --------------------------------------------------------------------------------


def _kick_flag(job_id: int) -> str:
    return f"syncsvc:resync:queued:{job_id}"


def resync_kick(job_id: int, *, countdown: float = 0.0) -> bool:
    """Queue a progress step of the job unless one is queued already. Never raises: the beat
    safety net re-kicks active jobs."""
    from ..tasks import resync_step

    try:
        if not flag_claim(_kick_flag(job_id), settings.SYNCSVC["RESYNC_POLL_S"] + countdown + 10):
            return False
        resync_step.apply_async(args=(job_id,), countdown=countdown or None)
        return True
    except (RedisError, OperationalError) as exc:  # beat's safety net re-kicks the job
        log.warning("resync %s: progress step not queued (%s)", job_id, exc)
        return False


def resync_kick_active() -> int:
    """Beat: queue a step of every active job (a lost step, a worker restart); open the
    incidents of alerts that have none yet, close those that recovered (their alerts may clear
    after their resync)."""
    kicked = sum(resync_kick(pk) for pk in ResyncJob.objects.filter(status__in=ACTIVE).values_list("pk", flat=True))
    incidents_for_open_alerts()
    incidents_close_recovered()
    return kicked


@dataclass(frozen=True)
class StepOutcome:
    requeue_in: float | None  # None: the job is finished (or gone)


def resync_advance(*, job_id: int) -> StepOutcome:
    """One bounded step of a job: settle deliveries, verify what was delivered, update the
    counters and the status. Runs one at a time per job (a short Redis lock)."""
    flags_clear(_kick_flag(job_id))
    lock = f"syncsvc:resync:running:{job_id}"
    budget = settings.SYNCSVC["RESYNC_STEP_BUDGET_S"]
    if not flag_claim(lock, budget + 30):
        return StepOutcome(settings.SYNCSVC["RESYNC_POLL_S"])
    try:
        return _advance(job_id, deadline=time.monotonic() + budget)
    finally:
        flags_clear(lock)


def _advance(job_id: int, *, deadline: float) -> StepOutcome:
    job = ResyncJob.objects.select_related("channel").filter(pk=job_id).first()
    if job is None or job.status not in ACTIVE:
        return StepOutcome(None)
    channel = job.channel
    if job.status == ResyncJob.Status.QUEUED:
        _begin(job, channel)
        job.refresh_from_db()
    _settle_deliveries(job, channel)
    wait = None
    verifiable, why_not = _verifiable(channel)
    if verifiable:
        try:
            _verify_delivered(job, channel, deadline=deadline)
        except ReadThrottled as throttled:
            wait = throttled.retry_after
        except ReadFailed as failed:
            job.detail = f"read-back failed: {failed}"[:1000]
            ResyncJob.objects.filter(pk=job.pk).update(detail=job.detail)
            _give_up_reading(job, failed)
            wait = max(settings.SYNCSVC["RESYNC_POLL_S"], 5.0)
    finished = _update_counters(job, verifiable=verifiable, why_not=why_not)
    if finished:
        _after_finish(job)
        return StepOutcome(None)
    if wait is not None:
        return StepOutcome(wait)
    return StepOutcome(0.0 if time.monotonic() > deadline else settings.SYNCSVC["RESYNC_POLL_S"])


def _begin(job: ResyncJob, channel: Channel) -> None:
    """queued -> running; a full-catalog job makes its marks here, in the same transaction."""
    with transaction.atomic():
        job = ResyncJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ResyncJob.Status.QUEUED:
            return
        if job.all_skus:
            variant_ids = list(ResyncItem.objects.filter(job=job).order_by("variant_id").values_list("variant_id", flat=True))
            _owe(channel, variant_ids, list(job.aspects), all_skus=True, now=timezone.now())
            transaction.on_commit(lambda: wake_channel(channel.pk))
        ResyncJob.objects.filter(pk=job.pk).update(status=ResyncJob.Status.RUNNING, started_at=timezone.now())


def _verifiable(channel: Channel) -> tuple[bool, str]:
    if not can_read_back(channel):
        return False, f"verification unavailable: the {channel.kind} channel cannot be read back"
    if channel.mode == Channel.Mode.SHADOW:
        return False, "verification skipped: the channel is in shadow mode (nothing was written to it)"
    return True, ""


def _settle_deliveries(job: ResyncJob, channel: Channel) -> None:
    """Pending items whose every aspect was delivered since the job began become delivered;
    those with a mark that gave up become failed."""
    aspects = list(job.aspects)
    pending = ResyncItem.objects.filter(job=job, state=ResyncItem.State.PENDING).order_by("pk")
    looked = 0
    after = 0
    while looked < STEP_ITEMS:
        chunk = list(pending.filter(pk__gt=after).values_list("pk", "variant_id", "sku")[:CHUNK])
        if not chunk:
            return
        after = chunk[-1][0]
        looked += len(chunk)
        _settle_chunk(job, channel, aspects, chunk)


def _settle_chunk(job: ResyncJob, channel: Channel, aspects: list[str], chunk) -> None:
    now = timezone.now()
    variant_ids = [variant_id for _, variant_id, _ in chunk]
    marks = {
        (m["variant_id"], m["aspect"]): m
        for m in SyncMark.objects.filter(channel=channel, variant_id__in=variant_ids, aspect__in=aspects).values(
            "variant_id", "aspect", "due_at", "delivered_at", "failed_at", "last_error"
        )
    }
    existing = set(Variant.objects.filter(pk__in=variant_ids).values_list("pk", flat=True))
    # Marks settled long ago are pruned: then a success attempt since the job began says it.
    unmarked_skus = [sku for _, variant_id, sku in chunk
                     if any((variant_id, aspect) not in marks for aspect in aspects)]
    attempted = set()
    if unmarked_skus:
        attempted = set(
            SyncAttempt.objects.filter(
                channel=channel, sku__in=unmarked_skus, event_type__in=aspects, timestamp__gte=job.created_at,
                status__in=[SyncAttempt.Status.SUCCESS, SyncAttempt.Status.IGNORED],
            ).values_list("sku", "event_type")
        )
    delivered, failed = [], {}
    for item_id, variant_id, sku in chunk:
        if variant_id not in existing:
            failed[item_id] = "the SKU was deleted from the catalog"
            continue
        states = []
        for aspect in aspects:
            mark = marks.get((variant_id, aspect))
            if mark is None:
                states.append("delivered" if (sku, aspect) in attempted else "unknown")
            elif mark["failed_at"] is not None:
                states.append("failed")
                failed[item_id] = f"{aspect}: {mark['last_error'] or 'gave up'}"[:255]
            elif mark["due_at"] is None and mark["delivered_at"] and mark["delivered_at"] >= job.created_at:
                states.append("delivered")
            else:
                states.append("owed")
        if item_id in failed:
            continue
        if all(state == "delivered" for state in states):
            delivered.append(item_id)
        elif "owed" not in states:
            # Nothing owed and no delivery seen since the job began: the mark was dropped
            # (its variant vanished mid-flight) or settled by a send that began before it.
            failed[item_id] = "not delivered, and nothing is owed any more"
    if delivered:
        ResyncItem.objects.filter(pk__in=delivered, state=ResyncItem.State.PENDING).update(
            state=ResyncItem.State.DELIVERED, detail="", updated_at=now
        )
    for item_id, detail in failed.items():
        ResyncItem.objects.filter(pk=item_id, state=ResyncItem.State.PENDING).update(
            state=ResyncItem.State.FAILED, detail=detail, updated_at=now
        )


def _verify_delivered(job: ResyncJob, channel: Channel, *, deadline: float) -> None:
    """Read delivered items back in batches until the deadline; matching ones are verified,
    the others mismatch once the grace for the channel to show a write has passed."""
    aspects = list(job.aspects)
    health = health_of(channel)
    adapter = adapter_for_channel(channel)
    batch = read_batch_size(channel)
    grace = timedelta(seconds=settings.SYNCSVC["RESYNC_VERIFY_GRACE_S"])
    after = 0
    while time.monotonic() < deadline:
        rows = list(
            ResyncItem.objects.filter(job=job, state=ResyncItem.State.DELIVERED, pk__gt=after)
            .order_by("pk").values_list("pk", "variant_id", "sku", "updated_at")[:batch * 2]
        )
        if not rows:
            return
        after = rows[-1][0]
        # A SKU owed again (a newer change in flight) is verified after that delivery.
        owed = set(
            SyncMark.objects.pending().filter(
                channel=channel, variant_id__in=[r[1] for r in rows], aspect__in=aspects, failed_at__isnull=True
            ).values_list("variant_id", flat=True)
        )
        rows = [r for r in rows if r[1] not in owed][:batch]
        if not rows:
            continue
        live = live_read(adapter, [sku for _, _, sku, _ in rows])
        expected = expected_values(channel, [variant_id for _, variant_id, _, _ in rows])
        now = timezone.now()
        verified, mismatched, differences = [], {}, []
        for item_id, variant_id, sku, delivered_at in rows:
            if variant_id not in expected:
                mismatched[item_id] = "the SKU was deleted from the catalog"
                continue
            found = differences_of(
                expected[variant_id], live.get(sku), aspects=aspects,
                price_tolerance=health.drift_price_tolerance, stock_tolerance=health.drift_stock_tolerance,
            )
            if not found:
                verified.append((item_id, sku))
            elif now - delivered_at >= grace:
                mismatched[item_id] = "; ".join(d.describe() for d in found)[:255]
                differences.extend(found)
        _record_verified(job, channel, aspects, verified, now)
        for item_id, detail in mismatched.items():
            ResyncItem.objects.filter(pk=item_id, state=ResyncItem.State.DELIVERED).update(
                state=ResyncItem.State.MISMATCH, detail=detail, updated_at=now
            )
        if differences:
            drifts_record(channel=channel, differences=differences)


def _give_up_reading(job: ResyncJob, failed: ReadFailed) -> None:
    """Delivered items the channel could not be read back for this long fail (the job can
    finish); those delivered since keep being tried."""
    cutoff = timezone.now() - timedelta(seconds=VERIFY_GIVE_UP_S)
    ResyncItem.objects.filter(job=job, state=ResyncItem.State.DELIVERED, updated_at__lt=cutoff).update(
        state=ResyncItem.State.FAILED, detail=f"delivered, but never read back: {failed}"[:255], updated_at=timezone.now()
    )


def _record_verified(job: ResyncJob, channel: Channel, aspects: list[str], verified, now) -> None:
    if not verified:
        return
    skus = [sku for _, sku in verified]
    with transaction.atomic():
        ResyncItem.objects.filter(pk__in=[pk for pk, _ in verified], state=ResyncItem.State.DELIVERED).update(
            state=ResyncItem.State.VERIFIED, detail="", updated_at=now
        )
        SyncAttempt.objects.filter(
            channel=channel, sku__in=skus, event_type__in=aspects, status=SyncAttempt.Status.SUCCESS,
            timestamp__gte=job.created_at, verified_at__isnull=True,
        ).update(verified_at=now)
        drifts_resolve(channel=channel, skus=skus, aspects=[*aspects, "listing"])


def _update_counters(job: ResyncJob, *, verifiable: bool, why_not: str) -> bool:
    """The job's counters from its items, its status from them; True when it finished now."""
    counts = _state_counts(job)
    pending = counts.get(ResyncItem.State.PENDING, 0)
    delivered_only = counts.get(ResyncItem.State.DELIVERED, 0)
    verified = counts.get(ResyncItem.State.VERIFIED, 0)
    failed = counts.get(ResyncItem.State.FAILED, 0) + counts.get(ResyncItem.State.MISMATCH, 0)
    fields = {"delivered": delivered_only + verified + counts.get(ResyncItem.State.MISMATCH, 0),
              "verified": verified, "failed": failed}
    finished = pending == 0 and (delivered_only == 0 or not verifiable)
    if finished:
        fields["status"] = ResyncJob.Status.FAILED if failed else ResyncJob.Status.DONE
        fields["finished_at"] = timezone.now()
        fields["detail"] = why_not or (f"{failed} SKU(s) not verified: see the items" if failed else
                                       f"all {verified} SKU(s) verified against the channel's live values")
    elif pending == 0:
        fields["status"] = ResyncJob.Status.VERIFYING
    changed = ResyncJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    return finished and bool(changed)


def _state_counts(job: ResyncJob) -> dict[str, int]:
    return dict(ResyncItem.objects.filter(job=job).values_list("state").annotate(n=Count("pk")).values_list("state", "n"))


def _after_finish(job: ResyncJob) -> None:
    log.info("resync %s of channel %s %s: %s", job.pk, job.channel.name, job.status, job.detail)
    drift_alert_update_if_any(job.channel)
    if job.incident_id:
        incident_close_if_recovered(job.incident)


def drift_alert_update_if_any(channel: Channel) -> None:
    """After a resync: clear the drift alert when its drift is resolved (raise it for a
    mismatch the read-back found)."""
    if Drift.objects.filter(channel=channel, resolved_at__isnull=True).exists() or Alert.objects.filter(
        channel=channel, kind=Alert.Kind.DRIFT, cleared_at__isnull=True
    ).exists():
        drift_alert_update(channel=channel)


# --- progress, as the API and the admin show it ----------------------------------------------


def limit_rate_per_s(channel: Channel, aspects: Sequence[str]) -> float:
    """About how many SKUs per second the channel's rate limit lets a resync finish: its push
    bucket for each aspect, then the read-back (a ceiling: the observed rate takes over)."""
    cls = adapter_class(channel.kind)
    rate, _ = cls.bucket_defaults(channel.settings or {})["default"]
    push_s_per_sku = len(aspects or cls.aspects) / max(0.01, rate * SKUS_PER_PUSH_UNIT.get(channel.kind, 1.0))
    read_s_per_sku = 1 / read_rate_per_s(channel) if can_read_back(channel) else 0.0
    return 1 / (push_s_per_sku + read_s_per_sku)


def resync_progress(job: ResyncJob) -> dict:
    """{done, total, verified, failed, eta_s, rate_per_s, status, ...}: done counts SKUs whose
    outcome is final (delivered, when the channel cannot be read back)."""
    counts = _state_counts(job)
    verifiable, _ = _verifiable(job.channel)
    final = sum(counts.get(state, 0) for state in FINAL_ITEM_STATES)
    done = final if verifiable else final + counts.get(ResyncItem.State.DELIVERED, 0)
    remaining = max(0, job.total - done)
    limit = limit_rate_per_s(job.channel, job.aspects)
    started = job.started_at or job.created_at
    elapsed = ((job.finished_at or timezone.now()) - started).total_seconds()
    observed = done / elapsed if done and elapsed > 0 else None
    rate = observed if observed and done >= min(10, job.total) else limit
    return {
        "job": job.pk,
        "channel": job.channel_id,
        "status": job.status,
        "all": job.all_skus,
        "aspects": list(job.aspects),
        "total": job.total,
        "done": done,
        "pending": counts.get(ResyncItem.State.PENDING, 0),
        "delivered": job.delivered if job.finished_at else (
            counts.get(ResyncItem.State.DELIVERED, 0) + counts.get(ResyncItem.State.VERIFIED, 0)
            + counts.get(ResyncItem.State.MISMATCH, 0)),
        "verified": counts.get(ResyncItem.State.VERIFIED, 0),
        "mismatch": counts.get(ResyncItem.State.MISMATCH, 0),
        "failed": counts.get(ResyncItem.State.FAILED, 0) + counts.get(ResyncItem.State.MISMATCH, 0),
        "counts": {state: counts.get(state, 0) for state in ResyncItem.State.values},
        "percent": round(100.0 * done / job.total, 1) if job.total else 100.0,
        "rate_per_s": round(observed, 3) if observed else None,
        "limit_rate_per_s": round(limit, 3),
        "eta_s": 0.0 if job.finished_at or not remaining else round(remaining / max(rate, 1e-6), 2),
        "verification": "available" if verifiable else "unavailable",
        "detail": job.detail,
        "incident": job.incident_id,
        "requested_by": job.requested_by,
        "reason": job.reason,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def resync_cancel(*, job: ResyncJob) -> bool:
    """Stop following the job (what is owed is still delivered: marks are never dropped)."""
    return bool(ResyncJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=ResyncJob.Status.CANCELLED, finished_at=timezone.now(), detail="cancelled"
    ))
