"""One builder per (event type, schema version): what syncsvc sends, in the envelope every
event shares:

    {"id", "type", "schema_version", "occurred_at", "data": {...}}

The webhook adapter builds item events (`item_events`), alert notifications build alert
events (`alert_event`); both at the version the subscriber pinned (`pins.pinned_version`).
Every builder here has a published schema in `schemas/` and a unit test keeps the two equal.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .catalog import ALERT_EVENT_TYPES, ASPECT_EVENT_TYPES
from .pins import channel_currency, pinned_version

if TYPE_CHECKING:
    from ..adapters.base import PushItem
    from ..models import Alert

# Item event ids derive from (channel, SKU, aspect, change version): a batch resent after a
# crash carries the same ids, so a receiver that dedupes applies it once.
_EVENT_NAMESPACE = uuid.UUID("6f1c7a52-4e0b-4f55-9a43-5a3f1f0c2d11")


def _decimal(value: Decimal) -> str:
    return format(value, "f")  # never exponent notation ("1E+1")


def _money(value: Decimal, currency: str) -> dict:
    return {"amount": _decimal(value), "currency": currency}


def _price_v1(item: PushItem, settings: Mapping) -> dict:
    return {
        "sku": item.sku,
        "price": _decimal(item.price),
        "compare_at_price": None if item.compare_at_price is None else _decimal(item.compare_at_price),
    }


def _price_v2(item: PushItem, settings: Mapping) -> dict:
    currency = channel_currency(settings)
    return {
        "sku": item.sku,
        "price": _money(item.price, currency),
        "compare_at_price": None if item.compare_at_price is None else _money(item.compare_at_price, currency),
    }


def _inventory_v1(item: PushItem, settings: Mapping) -> dict:
    return {"sku": item.sku, "available": item.available}


def _product_v1(item: PushItem, settings: Mapping) -> dict:
    return {
        "sku": item.sku,
        "handle": item.handle,
        "title": item.title,
        "description": item.description,
        "attributes": item.attributes,
    }


def _alert_v1(alert: Alert, settings: Mapping) -> dict:
    channel = alert.channel
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "channel": {"id": channel.pk, "name": channel.name, "kind": channel.kind},
        "open": alert.cleared_at is None,
        "detail": alert.detail,
        "data": alert.data,
        "opened_at": alert.opened_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
        "cleared_detail": alert.cleared_detail,
    }


# (type, version) -> data builder taking the source (a PushItem or an Alert) and the
# subscriber's channel settings. Adding a version: a schema file and a builder here.
BUILDERS: dict[tuple[str, int], Callable[[Any, Mapping], dict]] = {
    ("price.updated", 1): _price_v1,
    ("price.updated", 2): _price_v2,
    ("inventory.updated", 1): _inventory_v1,
    ("product.updated", 1): _product_v1,
    ("alert.opened", 1): _alert_v1,
    ("alert.cleared", 1): _alert_v1,
}


def event_envelope(*, event_type: str, version: int, event_id: str, occurred_at: datetime, data: dict) -> dict:
    return {
        "id": event_id,
        "type": event_type,
        "schema_version": version,
        "occurred_at": occurred_at.isoformat(),
        "data": data,
    }


def event_build(*, event_type: str, version: int, event_id: str, occurred_at: datetime, source: Any,
                settings: Mapping) -> dict:
    """One event of `event_type` at `version` from its source; KeyError if no such builder."""
    data = BUILDERS[(event_type, version)](source, settings)
    return event_envelope(event_type=event_type, version=version, event_id=event_id, occurred_at=occurred_at, data=data)


def item_event_id(channel_id: int, item: PushItem) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{channel_id}:{item.sku}:{item.aspect}:{item.version}"))


def item_events(*, channel_id: int, settings: Mapping, items: Sequence[PushItem], occurred_at: datetime) -> list[dict]:
    """The events announcing these items to a webhook channel, each at the channel's pinned
    version of its type."""
    events = []
    for item in items:
        event_type = ASPECT_EVENT_TYPES[item.aspect]
        events.append(event_build(
            event_type=event_type, version=pinned_version(settings, event_type), event_id=item_event_id(channel_id, item),
            occurred_at=occurred_at, source=item, settings=settings,
        ))
    return events


def alert_event(*, alert: Alert, event: str, occurred_at: datetime) -> dict:
    """The notification of `alert` (opened | cleared), at the version pinned in the settings
    of the channel the alert is about."""
    settings = alert.channel.settings or {}
    event_type = ALERT_EVENT_TYPES[event]
    return event_build(
        event_type=event_type, version=pinned_version(settings, event_type), event_id=f"alert-{alert.pk}-{event}",
        occurred_at=occurred_at, source=alert, settings=settings,
    )
