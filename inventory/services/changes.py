from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models import Aspect, Change
from ..signals import changes_recorded


def changes_record(*, variant_ids: Iterable[int], aspect: str, origin: str) -> list[Change]:
    """Record that `aspect` of these variants changed, in the caller's transaction, and tell
    subscribers (the channels' fan-out) before the transaction commits."""
    if aspect not in Aspect.values:
        raise ValueError(f"unknown aspect {aspect!r}")
    ids = list(dict.fromkeys(variant_ids))
    if not ids:
        return []
    if not transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return changes_record(variant_ids=ids, aspect=aspect, origin=origin)
    now = timezone.now()
    changes = Change.objects.bulk_create(
        [Change(variant_id=variant_id, aspect=aspect, origin=origin, created_at=now) for variant_id in ids],
        batch_size=5000,
    )
    changes_recorded.send(sender=Change, changes=changes)
    return changes
