"""Fan-out: inventory's in-transaction change hook -> one pending mark per channel."""
from __future__ import annotations

import contextvars
from collections import defaultdict

from django.conf import settings
from django.db import transaction

from inventory.selectors import stock_by_variant

from .adapters.registry import UnknownChannelKind, adapter_class
from .marks import marks_upsert
from .models import Channel
from .wakeups import wake_channel


def _aspects_of(kind: str) -> frozenset[str]:
    try:
        return adapter_class(kind).aspects
    except UnknownChannelKind:
        return frozenset({"price", "inventory", "content"})


def _split_low_stock(rows: list) -> tuple[list, list]:
    """Stock changes of SKUs at or under the low-stock level go at once (no coalescing
    window): the last units are where an oversell happens."""
    level = settings.SYNCSVC["LOW_STOCK_UNITS"]
    stock = stock_by_variant(variant_ids={row[0] for row in rows})
    low = {pk for pk, (on_hand, reserved) in stock.items() if on_hand - reserved <= level}
    return [row for row in rows if row[0] in low], [row for row in rows if row[0] not in low]


def on_changes_recorded(sender, changes, urgent: bool = False, **kwargs) -> None:
    """Upsert marks in the writing transaction (so they commit or roll back with the data);
    wake the channels only once it has committed. Disabled channels get marks too, so
    nothing is lost while they are paused; they are just not woken. `urgent` changes (the
    API's flag) skip the coalescing window and the channels' threshold rules, like low stock."""
    by_aspect: dict[str, list] = defaultdict(list)
    for change in changes:
        by_aspect[change.aspect].append((change.variant_id, change.pk, change.created_at))
    channels = list(Channel.objects.values_list("pk", "kind", "enabled"))
    to_wake: set[int] = set()
    for aspect, rows in by_aspect.items():
        channel_ids = [pk for pk, kind, _ in channels if aspect in _aspects_of(kind)]
        if urgent:
            low, normal = rows, []
        else:
            low, normal = _split_low_stock(rows) if aspect == "inventory" else ([], rows)
        marks_upsert(channel_ids=channel_ids, aspect=aspect, changes=normal)
        marks_upsert(channel_ids=channel_ids, aspect=aspect, changes=low, urgent=True)
        to_wake.update(pk for pk, kind, enabled in channels if enabled and pk in channel_ids)
    if to_wake:
        context = contextvars.copy_context()  # the wake-ups' log lines name the changes
        transaction.on_commit(lambda: context.run(lambda: [wake_channel(pk) for pk in sorted(to_wake)]))
