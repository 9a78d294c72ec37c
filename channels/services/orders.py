"""Channel orders become ledger movements, each exactly once.

Every order line has a row (`OrderLine`) whose state only moves forward; a movement is made
only by a state transition, under the row's lock, with a ledger reference unique per channel,
order, line and movement. So a webhook delivered three times, a refund arriving before its
order's last update, or a reservation expiring while the payment lands all count once.

Which status sells the units is the channel's `settings.commit_on`: `paid` (default),
`fulfilled` or `created`. Before it, the units are reserved (held from every channel,
`on_hand` unchanged); a reservation not committed within `settings.reservation_ttl_s`
(default 24 h) is released by a beat job.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.services.ledger import Movement, stock_movements_apply
from inventory.services.sqlarrays import int_array, text_array

from ..inbound.base import LineReport, LineStatus, ParsedWebhook
from ..models import Channel, OrderLine

State = OrderLine.State
COMMIT_ON = {"created": LineStatus.OPEN, "paid": LineStatus.PAID, "fulfilled": LineStatus.FULFILLED}
DEFAULT_RESERVATION_TTL_S = 24 * 3600
_PROGRESS = [LineStatus.OPEN, LineStatus.PAID, LineStatus.FULFILLED]

# (from, to) -> the movements that make the move true, as (reason, sign, name).
_MOVES: dict[tuple[str, str], tuple[tuple[str, int, str], ...]] = {
    (State.NEW, State.RESERVED): (("reservation", +1, "reserve"),),
    (State.NEW, State.COMMITTED): (("sale", -1, "sale"),),
    (State.NEW, State.CANCELLED): (),
    (State.RESERVED, State.COMMITTED): (("release", -1, "release"), ("sale", -1, "sale")),
    (State.RESERVED, State.CANCELLED): (("release", -1, "release"),),
    (State.RESERVED, State.EXPIRED): (("release", -1, "release"),),
    (State.EXPIRED, State.COMMITTED): (("sale", -1, "sale"),),
    (State.EXPIRED, State.CANCELLED): (),
    (State.COMMITTED, State.CANCELLED): (),  # the restock of the unsold rest is computed below
}


def source_of(channel: Channel) -> str:
    return f"channel:{channel.pk}"


def target_state(status: LineStatus, *, commit_on: str) -> str:
    if status is LineStatus.CANCELLED:
        return State.CANCELLED
    if status is LineStatus.REFUNDED:
        return State.COMMITTED
    threshold = COMMIT_ON.get(commit_on, LineStatus.PAID)
    return State.COMMITTED if _PROGRESS.index(status) >= _PROGRESS.index(threshold) else State.RESERVED


def _location(channel: Channel) -> str:
    """The stock location a channel sells from (its first mapped location)."""
    locations = channel.settings.get("locations") or ["default"]
    return str(locations[0])


def reservations_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Release reservations older than their channel's `reservation_ttl_s`, through the same
    plan as the webhooks (the release's reference is the one a later cancel would make, so
    it is made once). Returns how many lines expired."""
    now = now or timezone.now()
    released = 0
    for channel in Channel.objects.filter(order_lines__state=State.RESERVED).distinct():
        cutoff = now - timedelta(seconds=float(channel.settings.get("reservation_ttl_s", DEFAULT_RESERVATION_TTL_S)))
        while True:
            with transaction.atomic():
                lines = list(
                    OrderLine.objects.select_for_update(skip_locked=True)
                    .filter(channel=channel, state=State.RESERVED, reserved_at__lt=cutoff)
                    .order_by("channel_id", "order_id", "line_id")[:batch]
                )
                if not lines:
                    break
                plan = _BatchPlan(done=set())
                for line in lines:
                    plan.move(channel, line, State.EXPIRED, None)
                stock_movements_apply(movements=plan.movements)
                moment = timezone.now()
                for line in lines:
                    line.updated_at = moment
                _lines_save(lines, moment)
            released += len(lines)
            if len(lines) < batch:
                break
    return released


# --- many events at once ------------------------------------------------------------------------


@dataclass
class EventLines:
    """What a batch did with one event's lines and restocks (for its status and detail)."""

    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    moved: int = 0  # lines it moved (to a new state, or restocked): 0 when it brought no news


def orders_apply_batch(*, events: Sequence[tuple[Channel, ParsedWebhook]]) -> list[EventLines]:
    """Apply the order lines and restocks of many parsed events, in their order, in the
    caller's transaction: the order lines upserted in one statement and locked in one query
    ((channel, order, line) order), the transitions computed here with the same state machine
    as expiry (`_BatchPlan`), every ledger movement written by one
    `stock_movements_apply`, the changed lines saved in one statement."""
    from inventory.models import Variant, StockMovement

    outcomes = [EventLines() for _ in events]
    wanted: dict[tuple[int, str, str], LineReport] = {}
    orders: dict[int, set[str]] = {}
    for channel, parsed in events:
        if parsed.ignored:
            continue
        for report in parsed.lines:
            if report.sku:
                wanted.setdefault((channel.pk, parsed.order_id, report.line_id), report)
                orders.setdefault(channel.pk, set()).add(parsed.order_id)
        for restock in parsed.restocks:
            orders.setdefault(channel.pk, set()).add(parsed.order_id)
    if not orders:
        return outcomes
    channels = {channel.pk: channel for channel, _ in events}
    variants = dict(Variant.objects.filter(sku__in={r.sku for r in wanted.values()}).values_list("sku", "pk"))
    if wanted:
        OrderLine.objects.bulk_create(
            [
                OrderLine(channel_id=channel_id, order_id=order_id, line_id=line_id, sku=report.sku,
                          variant_id=variants.get(report.sku), quantity=report.quantity,
                          location=_location(channels[channel_id]),
                          state=State.NEW if report.sku in variants else State.UNKNOWN_SKU)
                for (channel_id, order_id, line_id), report in sorted(wanted.items())
            ],
            ignore_conflicts=True,
        )
    lines = {
        (line.channel_id, line.order_id, line.line_id): line
        for line in OrderLine.objects.select_for_update()
        .filter(reduce(operator.or_, (Q(channel_id=pk, order_id__in=sorted(ids)) for pk, ids in sorted(orders.items()))))
        .order_by("channel_id", "order_id", "line_id")
    }
    # References a restock may find in the ledger already (the same refund sent as another event).
    candidates = {
        (source_of(channel), f"{parsed.order_id}:{restock.line_id}:refund:{restock.refund_id}")
        for channel, parsed in events for restock in parsed.restocks
    } | {(source_of(channels[key[0]]), f"{key[1]}:{key[2]}:cancel") for key in lines}
    done = set(
        StockMovement.objects.filter(source__in={s for s, _ in candidates}, reference__in={r for _, r in candidates})
        .values_list("source", "reference")
    ) if candidates else set()
    plan = _BatchPlan(done=done)
    for (channel, parsed), outcome in zip(events, outcomes):
        if parsed.ignored:
            continue
        commit_on = str(channel.settings.get("commit_on", "paid"))
        for report in sorted(parsed.lines, key=lambda r: (r.sku, r.line_id)):
            if not report.sku:
                continue  # a custom line item: no stock to move
            line = lines[(channel.pk, parsed.order_id, report.line_id)]
            if line.state == State.UNKNOWN_SKU:
                if line.sku not in variants:
                    outcome.problems.append(f"line {report.line_id}: unknown SKU {line.sku!r}")
                    continue
                # The SKU was added since, and the event is applied again: the line starts now.
                line.state, line.variant_id = State.NEW, variants[line.sku]
                OrderLine.objects.filter(pk=line.pk).update(state=State.NEW, variant_id=line.variant_id)
            target = target_state(report.status, commit_on=commit_on)
            if parsed.triggered_at and line.last_event_at and parsed.triggered_at < line.last_event_at:
                # Redelivered late or out of order: it can only move the line forward.
                outcome.notes.append(f"line {report.line_id}: stale (from {parsed.triggered_at.isoformat()}, the line "
                                     f"moved on news from {line.last_event_at.isoformat()})")
            if plan.move(channel, line, target, parsed.triggered_at):
                outcome.moved += 1
                outcome.notes.append(f"line {report.line_id} ({line.sku}) -> {target}")
        for restock in sorted(parsed.restocks, key=lambda r: (r.sku, r.line_id)):
            line = lines.get((channel.pk, parsed.order_id, restock.line_id))
            if line is None or line.state in (State.NEW, State.RESERVED):
                outcome.deferred.append(f"line {restock.line_id}: its order is not recorded as sold yet")
                continue
            if line.state != State.COMMITTED and not (line.state == State.CANCELLED and line.restocked):
                continue  # nothing was sold: nothing to put back
            if plan.restock(channel, line, restock.quantity, name=f"refund:{restock.refund_id}"):
                outcome.moved += 1
                outcome.notes.append(f"line {restock.line_id} ({line.sku}) restocked")
    stock_movements_apply(movements=plan.movements)
    if plan.changed:
        now = timezone.now()
        changed = [lines[key] for key in sorted(plan.changed)]
        for line in changed:
            line.updated_at = now
        _lines_save(changed, now)
    return outcomes


def _lines_save(lines: list[OrderLine], now: datetime) -> None:
    if connection.vendor != "postgresql":
        OrderLine.objects.bulk_update(lines, ["state", "reserved_at", "restocked", "last_event_at", "updated_at"])
        return
    with connection.cursor() as cursor:  # one statement (bulk_update compiles a CASE per row and field)
        cursor.execute(
            f"UPDATE {OrderLine._meta.db_table} AS l SET state = d.s, reserved_at = d.ra, restocked = d.r,"
            " last_event_at = d.le, updated_at = %s"
            " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::int[], %s::timestamptz[])"
            " AS d(id, s, ra, r, le) WHERE l.id = d.id",
            [now, int_array(line.pk for line in lines), text_array(line.state for line in lines),
             _times(line.reserved_at for line in lines), int_array(line.restocked for line in lines),
             _times(line.last_event_at for line in lines)],
        )


def _times(values) -> str:
    """A timestamptz[] literal that may hold NULLs."""
    return "{" + ",".join("NULL" if v is None else '"' + v.isoformat() + '"' for v in values) + "}"


@dataclass
class _BatchPlan:
    """The movements and line changes of a batch, computed in event order."""

    done: set[tuple[str, str]]
    movements: list[Movement] = field(default_factory=list)
    changed: set[tuple[int, str, str]] = field(default_factory=set)

    def _add(self, channel: Channel, line: OrderLine, delta: int, reason: str, name: str) -> bool:
        source, reference = source_of(channel), f"{line.order_id}:{line.line_id}:{name}"
        if (source, reference) in self.done:
            return False
        self.done.add((source, reference))
        self.movements.append(Movement(variant_id=line.variant_id, delta=delta, reason=reason, source=source,
                                       reference=reference, location=line.location))
        return True

    def move(self, channel: Channel, line: OrderLine, target: str, at: datetime | None) -> bool:
        moves = _MOVES.get((line.state, target))
        if moves is None:  # the same state again, or backwards (a late or duplicate event)
            return False
        for reason, sign, name in moves:
            self._add(channel, line, sign * line.quantity, reason, name)
        if (line.state, target) == (State.COMMITTED, State.CANCELLED):
            self.restock(channel, line, line.quantity - line.restocked, name="cancel")
        line.state = target
        line.reserved_at = timezone.now() if target == State.RESERVED else line.reserved_at
        line.last_event_at = max(filter(None, [line.last_event_at, at]), default=None)
        self.changed.add((line.channel_id, line.order_id, line.line_id))
        return True

    def restock(self, channel: Channel, line: OrderLine, units: int, *, name: str) -> int:
        units = min(units, line.quantity - line.restocked)
        if units <= 0 or not self._add(channel, line, units, "return", name):
            return 0
        line.restocked += units
        self.changed.add((line.channel_id, line.order_id, line.line_id))
        return units
