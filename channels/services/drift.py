"""Drift: a channel's live value that differs from the PIM's, open until they agree again,
and the channel's `drift` alert, open while any drift is."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Alert, Channel, Drift
from .alerts import alert_clear, alert_raise
from .live_values import Difference

ALERT_SKUS = 100  # SKUs named in the alert's data (the Drift rows hold them all)


def drifts_record(*, channel: Channel, differences: Sequence[Difference]) -> list[Drift]:
    """Open a Drift per difference, or refresh the open one (its values and last_seen_at)."""
    now = timezone.now()
    recorded = []
    for difference in differences:
        values = {"variant_id": difference.variant_id, "expected": difference.expected[:100],
                  "live": difference.live[:100], "last_seen_at": now}
        key = {"channel": channel, "sku": difference.sku, "aspect": difference.aspect, "resolved_at__isnull": True}
        if not Drift.objects.filter(**key).update(**values):
            try:
                with transaction.atomic():
                    Drift.objects.create(channel=channel, sku=difference.sku, aspect=difference.aspect,
                                         detected_at=now, **values)
            except IntegrityError:  # recorded by a concurrent read a moment ago
                Drift.objects.filter(**key).update(**values)
        recorded.append(Drift.objects.get(**key))
    return recorded


def drifts_resolve(*, channel: Channel, skus: Iterable[str], aspects: Iterable[str] | None = None) -> int:
    """These SKUs agree with the PIM again (in `aspects`, default all of them, `listing`
    included): resolve their drift."""
    skus = list(skus)
    if not skus:
        return 0
    open_drifts = Drift.objects.filter(channel=channel, sku__in=skus, resolved_at__isnull=True)
    if aspects is not None:
        open_drifts = open_drifts.filter(aspect__in=list(aspects))
    return open_drifts.update(resolved_at=timezone.now())


def drift_alert_update(*, channel: Channel) -> tuple[Alert | None, bool]:
    """Raise (or refresh) the channel's drift alert while open drift remains, clear it when
    none does; returns (the open alert or None, opened now)."""
    open_drifts = Drift.objects.filter(channel=channel, resolved_at__isnull=True).order_by("sku", "aspect")
    count = open_drifts.count()
    if not count:
        alert_clear(channel=channel, kind=Alert.Kind.DRIFT, detail="the channel's live values agree with the PIM again")
        return None, False
    shown = list(open_drifts[:ALERT_SKUS])
    named = ", ".join(f"{d.sku} {d.aspect} {d.live or 'none'} (PIM {d.expected})" for d in shown[:5])
    more = f" and {count - 5} more" if count > 5 else ""
    detail = f"{count} live value(s) differ from the PIM on {channel.name}: {named}{more}"
    skus = sorted({d.sku for d in shown})
    return alert_raise(channel=channel, kind=Alert.Kind.DRIFT, detail=detail, data={"skus": skus, "count": count})
