"""Schema drift: PIM attributes a content-taking channel has no mapping for.

Detected where content items are built for a channel (`mapping.mapping_apply`, at the flush
and the catalog refresh), not at change capture: that is where an attribute would be
dropped, it runs outside the PIM's transaction, and price and stock batches (the hot path)
never pay for it. An attribute is open until a mapping for it is added or it disappears from
the catalog; the channel's `schema_drift` alert is open while any attribute is.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from inventory.models import Product, Variant

from ..models import Alert, Channel, UnmappedAttribute
from .alerts import alert_clear, alert_raise

ALERT_NAMES_SHOWN = 20


def schema_drift_note(
    *, channel: Channel, unmapped: dict[str, tuple[str, int]], skus: Iterable[str], seen: set[str]
) -> None:
    """Record the attributes these content items carried without a mapping (attribute ->
    (an example SKU, how many items)); resolve open ones an item that showed them no longer
    has when no product or variant has them any more; then raise or clear the alert."""
    now = timezone.now()
    if unmapped:
        rows = [(channel.pk, name, now, now, sku[:100], count) for name, (sku, count) in unmapped.items()]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"""
                INSERT INTO {UnmappedAttribute._meta.db_table}
                    (channel_id, attribute, first_seen_at, last_seen_at, example_sku, count, resolution)
                VALUES (%s, %s, %s, %s, %s, %s, '')
                ON CONFLICT (channel_id, attribute) DO UPDATE SET
                    last_seen_at = EXCLUDED.last_seen_at, example_sku = EXCLUDED.example_sku,
                    count = {UnmappedAttribute._meta.db_table}.count + EXCLUDED.count,
                    first_seen_at = CASE WHEN {UnmappedAttribute._meta.db_table}.resolved_at IS NULL
                        THEN {UnmappedAttribute._meta.db_table}.first_seen_at ELSE EXCLUDED.first_seen_at END,
                    resolved_at = NULL, resolution = ''
                """,
                rows,
            )
    gone = UnmappedAttribute.objects.filter(
        channel=channel, resolved_at__isnull=True, example_sku__in=list(skus)
    ).exclude(attribute__in=seen | set(unmapped))
    changed = bool(unmapped)
    for row in gone:
        if not _in_catalog(row.attribute):
            changed |= bool(UnmappedAttribute.objects.filter(pk=row.pk, resolved_at__isnull=True).update(
                resolved_at=now, resolution="disappeared"))
    if changed:
        schema_drift_alert_sync(channel=channel)


def schema_drift_mapped(*, channel: Channel, attribute: str) -> None:
    """A mapping for `attribute` was added: it is no longer drift."""
    if UnmappedAttribute.objects.filter(channel=channel, attribute=attribute, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolution="mapped"
    ):
        schema_drift_alert_sync(channel=channel)


def schema_drift_alert_sync(*, channel: Channel) -> None:
    """Open (or refresh) the channel's `schema_drift` alert naming its unmapped attributes,
    or clear it when none remain."""
    names = list(
        UnmappedAttribute.objects.filter(channel=channel, resolved_at__isnull=True)
        .order_by("attribute").values_list("attribute", flat=True)
    )
    if not names:
        alert_clear(channel=channel, kind=Alert.Kind.SCHEMA_DRIFT, detail="every attribute is mapped")
        return
    shown = ", ".join(names[:ALERT_NAMES_SHOWN]) + (f" and {len(names) - ALERT_NAMES_SHOWN} more" if len(names) > ALERT_NAMES_SHOWN else "")
    alert_raise(
        channel=channel, kind=Alert.Kind.SCHEMA_DRIFT,
        detail=f"{len(names)} PIM attribute(s) with no mapping, not sent: {shown}",
        data={"attributes": names},
    )


def _in_catalog(attribute: str) -> bool:
    return Product.objects.filter(Q(attributes__has_key=attribute)).exists() or Variant.objects.filter(
        attributes__has_key=attribute
    ).exists()
