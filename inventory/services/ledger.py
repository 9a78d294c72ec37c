from __future__ import annotations

from django.db import IntegrityError, transaction

from ..capture import suppressed
from ..errors import InventoryError, NotFound
from ..models import StockLevel, StockMovement, Variant
from .changes import changes_record

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
    return StockLevel.objects.select_for_update().get(variant=variant, location=location)


@transaction.atomic
def stock_adjust(
    *, sku: str, delta: int, reason: str, reference: str, source: str = "pim", location: str = "default"
) -> tuple[StockMovement, bool]:
    """Append a movement to the ledger and move the stock level with it, atomically.

    Idempotent on (source, reference): the same reference again returns the original movement
    and `created=False`, even when both arrive at once.
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
    return _append(variant, level, location, delta, reason, source, reference, on_hand, reserved)


@transaction.atomic
def stock_count(
    *, sku: str, on_hand: int, reference: str, source: str = "pim", location: str = "default"
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
    return _append(variant, level, location, delta, StockMovement.Reason.COUNT, source, reference, on_hand, level.reserved)


def _append(variant, level, location, delta, reason, source, reference, on_hand, reserved):
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
        changes_record(variant_ids=[variant.pk], aspect="inventory", origin=f"ledger:{reason}")
    return movement, True
