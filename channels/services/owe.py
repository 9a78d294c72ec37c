"""Owe a channel the current state of SKUs it may not have (a new channel, an emptied store)."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inventory.models import Change

from ..adapters.registry import adapter_class
from ..marks import marks_upsert
from ..models import Channel
from ..wakeups import wake_channel


@transaction.atomic
def channel_owe_all(*, channel: Channel) -> int:
    """Mark every variant's every aspect the channel handles as owed, at its latest version,
    and wake the channel after commit. Returns the number of marks."""
    # Owed from now: latency of a resync counts from when it was asked for.
    now = timezone.now()
    latest = Change.objects.values("variant_id", "aspect").annotate(version=Max("pk"))
    by_aspect: dict[str, list] = {}
    for row in latest:
        by_aspect.setdefault(row["aspect"], []).append((row["variant_id"], row["version"], now))
    count = 0
    for aspect, rows in by_aspect.items():
        if aspect in adapter_class(channel.kind).aspects:
            marks_upsert(channel_ids=[channel.pk], aspect=aspect, changes=rows)
            count += len(rows)
    if channel.enabled:
        transaction.on_commit(lambda: wake_channel(channel.pk))
    return count
