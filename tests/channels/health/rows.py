"""Rows as the flush and the inbound webhooks write them, for tests of the rules at a fixed time."""
from __future__ import annotations

from datetime import datetime, timedelta

from channels.models import Channel, InboundEvent, SyncAttempt


def attempts(channel: Channel, *, at: datetime, success: int = 0, failure: int = 0, throttled: int = 0,
             code: str = "http_503") -> None:
    """Attempts logged at `at` (a second apart, going back), as a flush logs them."""
    statuses = ["success"] * success + ["failure"] * failure + ["throttled"] * throttled
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            channel=channel, sku=f"SKU-{i}", event_type="price", status=status,
            error_code="" if status == "success" else code, version=1,
            committed_at=at - timedelta(seconds=i + 1), started_at=at - timedelta(seconds=i), timestamp=at - timedelta(seconds=i),
        )
        for i, status in enumerate(statuses)
    )


def inbound_events(channel: Channel, times: list[datetime]) -> None:
    InboundEvent.objects.bulk_create(
        InboundEvent(channel=channel, key=f"evt-{i}", topic="orders/create", body="{}", received_at=at)
        for i, at in enumerate(times)
    )
