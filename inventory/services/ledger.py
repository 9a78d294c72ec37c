from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from ..capture import suppressed
from ..errors import InventoryError, NotFound
from ..models import StockLevel, StockMovement, Variant
from .changes import changes_record
from .sqlarrays import int_array, text_array

# Reservations and releases move `reserved`; the other reasons move `on_hand`.
_RESERVED_REASONS = {StockMovement.Reason.RESERVATION, StockMovement.Reason.RELEASE}
_SIGN_RULES = {
    StockMovement.Reason.RECEIPT: (1, "a receipt adds stock: delta must be positive"),
    StockMovement.Reason.RETURN: (1, "a return adds stock: delta must be positive"),
    StockMovement.Reason.SALE: (-1, "a sale removes stock: delta must be negative"),
    StockMovement.Reason.RESERVATION: (1, "a reservation holds stock: delta must be positive"),
    StockMovement.Reason.RELEASE: (-1, "a release frees held stock: delta must be negative"),
}


def _variant(sku: str) -> Variant:
    try:
        return Variant.objects.get(sku=sku)
    except Variant.DoesNotExist:
        raise NotFound(f"unknown SKU {sku!r}", field="sku") from None


def _locked_level(variant: Variant, location: str) -> StockLevel:
    with suppressed():
        StockLevel.objects.get_or_create(variant=variant, location=location)
    return StockLevel.objects.select_for_update(no_key=True).get(variant=variant, location=location)


@transaction.atomic
def stock_adjust(
    *, sku: str, delta: int, reason: str, reference: str, source: str = "pim", location: str = "default",
    urgent: bool = False,
) -> tuple[StockMovement, bool]:
    """Append a movement to the ledger and move the stock level with it, atomically.

    Idempotent on (source, reference): the same reference again returns the original movement
    and `created=False`, even when both arrive at once. `urgent` changes skip the channels'
    threshold rules and minimum intervals.
    """
    if reason not in StockMovement.Reason.values:
        raise InventoryError(f"unknown reason {reason!r}", field="reason")
    sign_rule = _SIGN_RULES.get(reason)
    if delta == 0 and reason != StockMovement.Reason.CORRECTION:
        raise InventoryError("delta must not be zero", field="delta")
    if sign_rule and delta * sign_rule[0] < 0:
        raise InventoryError(sign_rule[1], field="delta")
    existing = StockMovement.objects.filter(source=source, reference=reference).first()
    if existing is not None:
        return existing, False
    variant = _variant(sku)
    level = _locked_level(variant, location)
    on_hand, reserved = level.on_hand, level.reserved
    if reason in _RESERVED_REASONS:
        reserved += delta
        if reserved < 0:
            raise InventoryError(f"only {level.reserved} reserved: cannot release {-delta}", field="delta")
    else:
        on_hand += delta
    return _append(variant, level, location, delta, reason, source, reference, on_hand, reserved, urgent=urgent)


@transaction.atomic
def stock_count(
    *, sku: str, on_hand: int, reference: str, source: str = "pim", location: str = "default", urgent: bool = False
) -> tuple[StockMovement, bool]:
    """Record a cycle count as the delta that makes `on_hand` true."""
    if on_hand < 0:
        raise InventoryError("a count cannot be negative", field="on_hand")
    existing = StockMovement.objects.filter(source=source, reference=reference).first()
    if existing is not None:
        return existing, False
    variant = _variant(sku)
    level = _locked_level(variant, location)
    delta = on_hand - level.on_hand
    return _append(
        variant, level, location, delta, StockMovement.Reason.COUNT, source, reference, on_hand, level.reserved, urgent=urgent
    )


def _append(variant, level, location, delta, reason, source, reference, on_hand, reserved, *, urgent=False):
    try:
        with transaction.atomic():
            movement = StockMovement.objects.create(
                variant=variant,
                location=location,
                delta=delta,
                reason=reason,
                source=source,
                reference=reference,
                on_hand_after=on_hand,
                reserved_after=reserved,
            )
    except IntegrityError:
        # The same reference committed while we waited for the level's lock: it was applied.
        return StockMovement.objects.get(source=source, reference=reference), False
    if delta:
        StockLevel.objects.filter(pk=level.pk).update(on_hand=on_hand, reserved=reserved)
        changes_record(variant_ids=[variant.pk], aspect="inventory", origin=f"ledger:{reason}", urgent=urgent)
    return movement, True


# --- many movements at once (inbound orders) ---------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """One ledger movement for `stock_movements_apply` (the variant by id: the caller knows it)."""

    variant_id: int
    delta: int
    reason: str
    reference: str
    source: str = "pim"
    location: str = "default"


def _check(movement: Movement) -> None:
    if movement.reason not in StockMovement.Reason.values:
        raise InventoryError(f"unknown reason {movement.reason!r}", field="reason")
    sign_rule = _SIGN_RULES.get(movement.reason)
    if movement.delta == 0 and movement.reason != StockMovement.Reason.CORRECTION:
        raise InventoryError(f"{movement.reference}: delta must not be zero", field="delta")
    if sign_rule and movement.delta * sign_rule[0] < 0:
        raise InventoryError(f"{movement.reference}: {sign_rule[1]}", field="delta")


@transaction.atomic
def stock_movements_apply(*, movements: Sequence[Movement]) -> list[bool]:
    """Append many movements and move their stock levels, in order, in a few statements.

    Idempotent on (source, reference) like `stock_adjust`: a reference already in the ledger
    (or twice in `movements`) is skipped. Returns, per movement, whether it was applied. The
    affected levels are locked in one query in (variant, location) order (missing ones are
    created first), so two callers never wait on each other crosswise; one `changes_record`
    covers every variant whose stock moved. A release below zero reserved raises
    `InventoryError` and nothing is written.
    """
    movements = list(movements)
    if not movements:
        return []
    for movement in movements:
        _check(movement)
    keys = sorted({(m.variant_id, m.location) for m in movements})
    levels = _levels_locked(keys)
    sources = {m.source for m in movements}
    existing = set(
        StockMovement.objects.filter(source__in=sources, reference__in={m.reference for m in movements})
        .values_list("source", "reference")
    )
    applied: list[bool] = []
    rows: list[tuple[Movement, int, int]] = []
    for movement in movements:
        key = (movement.source, movement.reference)
        if key in existing:
            applied.append(False)
            continue
        existing.add(key)
        level = levels[(movement.variant_id, movement.location)]
        if movement.reason in _RESERVED_REASONS:
            if level[2] + movement.delta < 0:
                raise InventoryError(
                    f"{movement.reference}: only {level[2]} reserved: cannot release {-movement.delta}", field="delta"
                )
            level[2] += movement.delta
        else:
            level[1] += movement.delta
        level[3] = level[3] or movement.delta != 0
        rows.append((movement, level[1], level[2]))
        applied.append(True)
    if not rows:
        return applied
    now = timezone.now()
    _movements_insert(rows, now)
    moved = [(key, level) for key, level in levels.items() if level[3]]
    if moved:
        _levels_update([(level[0], level[1], level[2]) for _, level in moved], now)
        reasons = sorted({m.reason for m, _, _ in rows if m.delta})
        changes_record(variant_ids=sorted({key[0] for key, _ in moved}), aspect="inventory",
                       origin=f"ledger:{'+'.join(reasons)}"[:100])
    return applied


def _levels_locked(keys: list[tuple[int, str]]) -> dict[tuple[int, str], list]:
    """{(variant_id, location): [level id, on_hand, reserved, moved]}, locked in key order."""

    def lock() -> dict[tuple[int, str], list]:
        wanted = set(keys)
        rows = (
            StockLevel.objects.select_for_update(no_key=True)
            .filter(variant_id__in={v for v, _ in keys}, location__in={loc for _, loc in keys})
            .order_by("variant_id", "location")
            .values_list("pk", "variant_id", "location", "on_hand", "reserved")
        )
        return {(v, loc): [pk, on_hand, reserved, False] for pk, v, loc, on_hand, reserved in rows if (v, loc) in wanted}

    levels = lock()
    missing = [key for key in keys if key not in levels]
    if missing:
        with suppressed():
            StockLevel.objects.bulk_create(
                [StockLevel(variant_id=v, location=loc) for v, loc in missing], ignore_conflicts=True
            )
        levels = lock()
    return levels


def _movements_insert(rows: list[tuple[Movement, int, int]], now) -> None:
    if connection.vendor == "postgresql":
        columns = list(zip(*[
            (m.variant_id, m.location, m.delta, m.reason, m.source, m.reference, on_hand, reserved)
            for m, on_hand, reserved in rows
        ]))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {StockMovement._meta.db_table}"
                " (variant_id, location, delta, reason, source, reference, on_hand_after, reserved_after, created_at)"
                " SELECT v, l, d, r, s, ref, o, res, %s FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[],"
                " %s::text[], %s::text[], %s::int[], %s::int[]) WITH ORDINALITY AS t(v, l, d, r, s, ref, o, res, n)"
                " ORDER BY n ON CONFLICT (source, reference) DO NOTHING RETURNING id",
                [now, int_array(columns[0]), text_array(columns[1]), int_array(columns[2]), text_array(columns[3]),
                 text_array(columns[4]), text_array(columns[5]), int_array(columns[6]), int_array(columns[7])],
            )
            inserted = len(cursor.fetchall())
    else:
        objs = StockMovement.objects.bulk_create(
            [StockMovement(variant_id=m.variant_id, location=m.location, delta=m.delta, reason=m.reason, source=m.source,
                           reference=m.reference, on_hand_after=on_hand, reserved_after=reserved, created_at=now)
             for m, on_hand, reserved in rows],
            batch_size=500,
        )
        inserted = len(objs)
    if inserted != len(rows):
        # A reference committed by a writer that did not hold the level's lock: start over.
        raise LedgerRace(f"{len(rows) - inserted} of {len(rows)} references were applied meanwhile; retry")


def _levels_update(rows: list[tuple[int, int, int]], now) -> None:
    if connection.vendor == "postgresql":
        ids, on_hands, reserveds = zip(*rows)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {StockLevel._meta.db_table} AS l SET on_hand = d.o, reserved = d.r, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::int[], %s::int[]) AS d(id, o, r) WHERE l.id = d.id",
                [now, int_array(ids), int_array(on_hands), int_array(reserveds)],
            )
    else:
        StockLevel.objects.bulk_update(
            [StockLevel(pk=pk, on_hand=on_hand, reserved=reserved, updated_at=now) for pk, on_hand, reserved in rows],
            ["on_hand", "reserved", "updated_at"], batch_size=500,
        )


class LedgerRace(OperationalError):
    """Raised inside the transaction so it rolls back; retried like a deadlock."""
