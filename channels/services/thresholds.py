"""Threshold rules: which claimed marks the flush sends now, holds for later or ignores.

Decided in the flush, which reads the current state anyway: a held mark is released unsent,
due again at the time its rule allows, and logs no attempt (nothing was tried). Held changes
are never lost: a mark held for being small (`min_units`) goes out in the channel's next
threshold batch whatever its size, batches falling on multiples of `batch_every_s` (so the
channel's held marks share one due time and go in few bulk calls); a mark held by the minimum
interval is due when the interval ends and then sends the SKU's latest state. An urgent change
(the API's `urgent`, a correction the PIM flags, low stock) skips every rule.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from ..adapters.base import PushItem
from ..marks import ClaimedMark, marks_hold, marks_ignore
from ..models import Channel, Listing, SyncAttempt, SyncMark, ThresholdRule

MIN_INTERVAL = "min_interval"
MIN_UNITS = "min_units"
BELOW_EPSILON = "below_price_epsilon"  # the sync log's error code of an ignored price


@dataclass(frozen=True)
class Verdicts:
    """The flush's items split by the rules."""

    send: list[PushItem]
    # (reason, due time or None, seconds after the last delivery or None) -> mark ids
    held: dict[tuple[str, datetime | None, float | None], list[int]] = field(default_factory=dict)
    ignored: list[PushItem] = field(default_factory=list)


def batch_at(held_since: datetime, every_s: int) -> datetime:
    """The first threshold batch after `held_since`: the next multiple of `every_s` seconds."""
    slot = math.floor(held_since.timestamp() / every_s) + 1
    return datetime.fromtimestamp(slot * every_s, dt_timezone.utc)


def _last_batch(now: datetime, every_s: int) -> datetime:
    return datetime.fromtimestamp(math.floor(now.timestamp() / every_s) * every_s, dt_timezone.utc)


def threshold_rules(*, channel_id: int) -> dict[str, ThresholdRule]:
    return {rule.aspect: rule for rule in ThresholdRule.objects.filter(channel_id=channel_id)}


def _sent_values(channel: Channel, variant_ids: set[int]) -> dict[int, tuple]:
    if not variant_ids:
        return {}
    rows = Listing.objects.filter(channel=channel, variant_id__in=variant_ids).values_list(
        "variant_id", "sent_price", "sent_compare_at_price", "sent_available"
    )
    return {row[0]: row[1:] for row in rows}


def thresholds_apply(
    *, channel: Channel, items: Sequence[PushItem], marks: Mapping[tuple[str, str], ClaimedMark]
) -> Verdicts:
    """Split a batch's items into those to send now, those held (by mark) and those ignored."""
    rules = threshold_rules(channel_id=channel.pk) if items else {}
    if not rules:
        return Verdicts(send=list(items))
    now = timezone.now()
    low_stock = settings.SYNCSVC["LOW_STOCK_UNITS"]
    compared = {
        marks[(item.sku, item.aspect)].variant_id
        for item in items
        if (item.aspect == "inventory" and rules.get("inventory") and rules["inventory"].min_units)
        or (item.aspect == "price" and rules.get("price") and rules["price"].price_epsilon)
    }
    sent = _sent_values(channel, compared)
    send: list[PushItem] = []
    held: dict[tuple, list[int]] = defaultdict(list)
    ignored: list[PushItem] = []
    for item in items:
        mark = marks[(item.sku, item.aspect)]
        rule = rules.get(item.aspect)
        # The last units are where an oversell happens: they go at once, like urgent changes.
        if rule is None or mark.urgent or (item.aspect == "inventory" and item.available <= low_stock):
            send.append(item)
            continue
        if mark.held_reason == MIN_UNITS and mark.held_since and batch_at(mark.held_since, rule.batch_every_s) <= now:
            send.append(item)  # its threshold batch: sent whatever its size
            continue
        if rule.min_interval_s and mark.delivered_at and mark.delivered_at + timedelta(seconds=rule.min_interval_s) > now:
            held[(MIN_INTERVAL, None, float(rule.min_interval_s))].append(mark.id)
            continue
        last = sent.get(mark.variant_id)
        if item.aspect == "inventory" and rule.min_units and last and last[2] is not None:
            if abs(item.available - last[2]) < rule.min_units:
                held[(MIN_UNITS, batch_at(mark.held_since or now, rule.batch_every_s), None)].append(mark.id)
                continue
        if item.aspect == "price" and rule.price_epsilon and last and last[0] is not None:
            if last[1] == item.compare_at_price and abs(Decimal(item.price) - last[0]) < rule.price_epsilon:
                ignored.append(item)
                continue
        send.append(item)
    return Verdicts(send=send, held=dict(held), ignored=ignored)


def thresholds_settle(*, verdicts: Verdicts, marks: Mapping[tuple[str, str], ClaimedMark], claimer: str) -> None:
    """Release the held marks to their time and settle the ignored ones (in the flush's
    transaction, after the marks are locked)."""
    for (reason, due_at, after_s), mark_ids in verdicts.held.items():
        marks_hold(mark_ids=mark_ids, claimer=claimer, reason=reason, due_at=due_at, after_delivery_s=after_s)
    marks_ignore(mark_ids=[marks[(i.sku, i.aspect)].id for i in verdicts.ignored], claimer=claimer)


def ignored_attempts(
    *, channel: Channel, verdicts: Verdicts, marks: Mapping[tuple[str, str], ClaimedMark], started_at: datetime
) -> list[SyncAttempt]:
    """One `ignored` row in the sync log per price change too small to send, so "why did my
    price not arrive" has an answer."""
    now = timezone.now()
    rows = []
    for item in verdicts.ignored:
        mark = marks[(item.sku, item.aspect)]
        rows.append(
            SyncAttempt(
                channel=channel, variant_id=mark.variant_id, sku=item.sku, event_type=item.aspect,
                status=SyncAttempt.Status.IGNORED, error_code=BELOW_EPSILON,
                error_message="the price moved by less than the channel's price epsilon from the last price sent",
                retry_count=mark.attempts, version=mark.version, committed_at=mark.first_committed_at,
                started_at=started_at, timestamp=now,
            )
        )
    return rows


def held_release() -> list[int]:
    """Beat: bring held marks in to now when the channel's current rule says their time came
    (a rule shortened or deleted since they were held), then return the enabled channels that
    have held marks due, for the caller to wake. Safe to run twice."""
    now = timezone.now()
    held = list(
        SyncMark.objects.filter(held_reason__isnull=False, due_at__gt=now, lease_until__isnull=True)
        .values_list("channel_id", "aspect", "held_reason").distinct()
    )
    rules = {
        (rule.channel_id, rule.aspect): rule
        for rule in ThresholdRule.objects.filter(channel_id__in={channel_id for channel_id, _, _ in held})
    }
    for channel_id, aspect, reason in held:
        rule = rules.get((channel_id, aspect))
        marks = SyncMark.objects.filter(
            channel_id=channel_id, aspect=aspect, held_reason=reason, due_at__gt=now, lease_until__isnull=True
        )
        if rule is not None and reason == MIN_UNITS:
            marks = marks.filter(held_since__lt=_last_batch(now, rule.batch_every_s))
        elif rule is not None and reason == MIN_INTERVAL:
            marks = marks.filter(delivered_at__lte=now - timedelta(seconds=rule.min_interval_s))
        marks.update(due_at=now)
    due = set(
        SyncMark.objects.filter(held_reason__isnull=False, due_at__lte=now, failed_at__isnull=True)
        .exclude(lease_until__gte=now).values_list("channel_id", flat=True).distinct()
    )
    return sorted(Channel.objects.filter(pk__in=due, enabled=True).values_list("pk", flat=True))


def held_summary(*, channel_id: int, now: datetime | None = None) -> dict:
    """`{count, oldest_held_age_s}` of the channel's held changes (for /status/)."""
    now = now or timezone.now()
    row = SyncMark.objects.pending().filter(channel_id=channel_id, held_since__isnull=False).aggregate(
        count=Count("id"), oldest=Min("held_since")
    )
    oldest = row["oldest"]
    return {"count": row["count"], "oldest_held_age_s": round((now - oldest).total_seconds(), 3) if oldest else None}
