"""Pruning old change records in small batches (DESIGN.md decision 9)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef

from ..models import Change


@dataclass(frozen=True)
class ChangesPruned:
    deleted: int
    after_id: int  # where the next batch starts; 0 when a pass over the old changes ended
    done: bool  # no old change left to look at in this pass


def changes_prune_batch(*, older_than: datetime, after_id: int = 0, batch_size: int = 5000) -> ChangesPruned:
    """Delete, among the next `batch_size` changes (by id, after `after_id`) made before
    `older_than`, those a later change of the same variant and aspect superseded.

    The latest change of every (variant, aspect) is kept whatever its age: it is the version
    a new channel or a resync is owed (`channel_owe_all` reads it), and the one pending sync
    marks carry (a mark's version only ever moves up to the latest change), so pruning never
    takes a version anything still refers to. One short statement per batch: no long lock.
    """
    # The newest id among old changes bounds the scan by primary key (ids follow creation
    # time, give or take concurrent commits: a straggler is left for the next pass).
    bound = (
        Change.objects.filter(created_at__lt=older_than).order_by("-created_at", "-pk").values_list("pk", flat=True).first()
    )
    if bound is None or after_id >= bound:
        return ChangesPruned(0, 0, True)
    candidates = list(
        Change.objects.filter(pk__gt=after_id, pk__lte=bound, created_at__lt=older_than)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if not candidates:
        return ChangesPruned(0, 0, True)
    newer = Change.objects.filter(variant_id=OuterRef("variant_id"), aspect=OuterRef("aspect"), pk__gt=OuterRef("pk"))
    deleted, _ = Change.objects.filter(pk__in=candidates).filter(Exists(newer)).delete()
    done = len(candidates) < batch_size
    return ChangesPruned(deleted, 0 if done else candidates[-1], done)
