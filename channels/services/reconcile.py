"""Reconciliation: read every SKU's live value from each channel that can be read back, once
per `ChannelHealth.reconcile_cycle_s`, compare with the PIM, record drift, raise (and clear)
the channel's drift alert, and, when the channel is set to (`reconcile_resync`), resync the
drifted SKUs.

Reads are paced, not bunched: at a moment `t` into a cycle of `N` SKUs the cursor should be
`N × t / cycle` SKUs in (variant id order), and each run reads what it is behind by, at most
the share of the channel's read rate one beat interval allows (the reads go through the
adapter, so they share the channel's global limiter with the pushes; a throttled read stops
the run and the cursor stays). A channel made a minute ago with a one-day cycle is not read at
all yet. SKUs with marks pending are skipped: they are in flight, not drifted.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from inventory.models import Variant

from ..models import Alert, Channel, Listing, ReconcileCursor, ResyncJob, SyncMark
from ..wakeups import flag_claim, flags_clear
from .alerts import health_of
from .drift import drift_alert_update, drifts_record, drifts_resolve
from .flush import adapter_for_channel
from .incidents import incident_for_alert
from .live_values import (
    Difference,
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

RECONCILE_ASPECTS = ("price", "inventory")


@dataclass(frozen=True)
class ReconcileOutcome:
    checked: int = 0
    drifted: int = 0
    skipped: int = 0  # in flight (pending marks)
    throttled: bool = False
    error: str = ""
    cycle_done: bool = False
    resync_job: int | None = None


def reconcilable_channels() -> list[Channel]:
    return [c for c in Channel.objects.filter(enabled=True, mode=Channel.Mode.LIVE) if can_read_back(c)]


def _cursor(channel: Channel) -> ReconcileCursor:
    cursor, _ = ReconcileCursor.objects.get_or_create(channel=channel)
    return cursor


def reads_owed(channel: Channel, *, total: int | None = None, now=None) -> int:
    """How many SKUs the channel's cycle is behind by now (0 for a cycle not started yet)."""
    cursor = _cursor(channel)
    if cursor.cycle_started_at is None:
        return 0
    health = health_of(channel)
    total = Variant.objects.count() if total is None else total
    elapsed = ((now or timezone.now()) - cursor.cycle_started_at).total_seconds()
    target = min(total, math.floor(total * elapsed / max(1, health.reconcile_cycle_s)))
    if cursor.checked_in_cycle >= total and elapsed >= health.reconcile_cycle_s:
        return max(1, total)  # a new cycle is due
    return max(0, target - cursor.checked_in_cycle)


def channels_due() -> list[int]:
    """Beat: the channels reconciliation should read now."""
    total = Variant.objects.count()
    now = timezone.now()
    due = []
    for channel in reconcilable_channels():
        cursor = _cursor(channel)
        if cursor.cycle_started_at is None:
            # Start the first cycle now; nothing is read before a SKU's share of it passed.
            ReconcileCursor.objects.filter(pk=cursor.pk, cycle_started_at__isnull=True).update(cycle_started_at=now)
        elif reads_owed(channel, total=total, now=now):
            due.append(channel.pk)
    return due


def reconcile_channel(*, channel_id: int, force: bool = False) -> ReconcileOutcome:
    """Read the channel's next batch of SKUs and compare them with the PIM. `force` (an
    operator's "reconcile now") reads a batch even when the pacing says nothing is owed.
    One run at a time per channel."""
    lock = f"syncsvc:reconcile:running:{channel_id}"
    if not flag_claim(lock, settings.SYNCSVC["RECONCILE_BUDGET_S"] + 60):
        return ReconcileOutcome()
    try:
        channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
        if channel is None or not can_read_back(channel):
            return ReconcileOutcome()
        return _reconcile(channel, force=force)
    finally:
        flags_clear(lock)


def reconcile_batch_limit(channel: Channel) -> int:
    """The most SKUs one run may read: its share of the channel's read rate over one interval."""
    config = settings.SYNCSVC
    return max(1, int(read_rate_per_s(channel) * config["RECONCILE_INTERVAL_S"] * config["RECONCILE_READ_SHARE"]))


def _reconcile(channel: Channel, *, force: bool) -> ReconcileOutcome:
    health = health_of(channel)
    cursor = _cursor(channel)
    now = timezone.now()
    total = Variant.objects.count()
    if cursor.cycle_started_at is None or (
        cursor.checked_in_cycle >= total and (now - cursor.cycle_started_at).total_seconds() >= health.reconcile_cycle_s
    ) or (force and cursor.checked_in_cycle >= total):
        _cycle_restart(cursor, now)
    owed = reads_owed(channel, total=total, now=now)
    if force:
        owed = max(owed, read_batch_size(channel))
    owed = min(owed, reconcile_batch_limit(channel))
    if owed <= 0:
        return ReconcileOutcome()
    variants = list(
        Variant.objects.filter(pk__gt=cursor.after_variant_id).order_by("pk").values_list("pk", "sku")[:owed]
    )
    deadline = time.monotonic() + settings.SYNCSVC["RECONCILE_BUDGET_S"]
    adapter = adapter_for_channel(channel)
    batch = read_batch_size(channel)
    checked = skipped = 0
    drifted: list[Difference] = []
    throttled, error = False, ""
    for start in range(0, len(variants), batch):
        if time.monotonic() > deadline:
            break
        chunk = variants[start:start + batch]
        try:
            found, chunk_skipped = _check(channel, adapter, health, chunk)
        except ReadThrottled:
            throttled = True
            break
        except ReadFailed as failed:
            error = str(failed)
            log.warning("reconciliation of %s: read failed (%s); the cursor stays", channel.name, failed)
            break
        drifted.extend(found)
        checked += len(chunk) - chunk_skipped
        skipped += chunk_skipped
        ReconcileCursor.objects.filter(pk=cursor.pk).update(
            after_variant_id=chunk[-1][0], checked_in_cycle=F("checked_in_cycle") + len(chunk),
            drifted_in_cycle=F("drifted_in_cycle") + len({d.sku for d in found}), last_run_at=timezone.now(),
        )
    cursor.refresh_from_db()
    cycle_done = not Variant.objects.filter(pk__gt=cursor.after_variant_id).exists()
    if cycle_done and cursor.checked_in_cycle < total:
        # Variants deleted during the cycle: the cursor is at the end, the count says less.
        ReconcileCursor.objects.filter(pk=cursor.pk).update(checked_in_cycle=total)
    alert, opened = drift_alert_update(channel=channel)
    if opened and alert is not None:
        incident_for_alert(alert)
    job = _resync_drifted(channel, health, drifted, alert) if drifted else None
    outcome = ReconcileOutcome(checked, len({d.sku for d in drifted}), skipped, throttled, error, cycle_done,
                               job.pk if job else None)
    if drifted:
        log.info("reconciliation of %s: %d of %d SKU(s) drifted", channel.name, outcome.drifted, checked)
    return outcome


def _cycle_restart(cursor: ReconcileCursor, now) -> None:
    ReconcileCursor.objects.filter(pk=cursor.pk).update(
        after_variant_id=0, cycle_started_at=now, checked_in_cycle=0, drifted_in_cycle=0,
        cycles=F("cycles") + (1 if cursor.cycle_started_at else 0),
    )
    cursor.refresh_from_db()


def _check(channel: Channel, adapter, health, chunk) -> tuple[list[Difference], int]:
    """Compare one batch; returns the differences found and how many SKUs were skipped."""
    variant_ids = [pk for pk, _ in chunk]
    in_flight = set(
        SyncMark.objects.pending().filter(channel=channel, variant_id__in=variant_ids).values_list("variant_id", flat=True)
    )
    unlisted = set(
        Listing.objects.filter(channel=channel, variant_id__in=variant_ids, status=Listing.Status.UNLISTED)
        .values_list("variant_id", flat=True)
    )
    wanted = [(pk, sku) for pk, sku in chunk if pk not in in_flight]
    if not wanted:
        return [], len(chunk)
    live = live_read(adapter, [sku for _, sku in wanted])
    expected = expected_values(channel, [pk for pk, _ in wanted])
    differences, agreeing = [], []
    for pk, sku in wanted:
        if pk not in expected:
            continue  # deleted meanwhile
        value = live.get(sku)
        if (value is None or not value.listed) and pk in unlisted:
            agreeing.append(sku)  # the channel does not carry it, and we know
            continue
        found = differences_of(
            expected[pk], value, aspects=RECONCILE_ASPECTS,
            price_tolerance=health.drift_price_tolerance, stock_tolerance=health.drift_stock_tolerance,
        )
        if found:
            differences.extend(found)
            # The aspects that agree are not drifted any more.
            drifted_aspects = {d.aspect for d in found}
            if "listing" not in drifted_aspects:
                drifts_resolve(channel=channel, skus=[sku],
                               aspects=[a for a in (*RECONCILE_ASPECTS, "listing") if a not in drifted_aspects])
        else:
            agreeing.append(sku)
    drifts_resolve(channel=channel, skus=agreeing)
    drifts_record(channel=channel, differences=differences)
    return differences, len(chunk) - len(wanted)


def _resync_drifted(channel: Channel, health, drifted: list[Difference], alert: Alert | None) -> ResyncJob | None:
    """When the channel is set to: resync the drifted SKUs not already in an active resync."""
    from .resync import ACTIVE, ResyncError, resync_start

    if not health.reconcile_resync:
        return None
    busy = set(
        ResyncJob.objects.filter(channel=channel, status__in=ACTIVE, items__state__in=["pending", "delivered"])
        .values_list("items__sku", flat=True)
    )
    skus = sorted({d.sku for d in drifted} - busy)
    if not skus:
        return None
    try:
        return resync_start(
            channel=channel, skus=skus, requested_by="reconciliation", reason="drift found by reconciliation",
            incident=alert.incident if alert is not None else None,
        )
    except ResyncError as refused:  # e.g. disabled meanwhile
        log.warning("reconciliation of %s: resync of drifted SKUs refused: %s", channel.name, refused)
        return None
