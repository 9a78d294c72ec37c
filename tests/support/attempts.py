"""Sync log rows written directly, for tests of what reads or prunes the log."""
from __future__ import annotations

from datetime import datetime, timedelta

from channels.models import Channel, SyncAttempt


def attempt(channel: Channel, *, at: datetime, sku: str = "A", status: str = "success", event_type: str = "price",
            error_code: str = "", resolved_at: datetime | None = None, version: int = 1, **fields) -> SyncAttempt:
    """One attempt logged at `at`, with hops a few milliseconds apart before it."""
    return SyncAttempt(
        channel=channel, sku=sku, status=status, event_type=event_type, error_code=error_code,
        resolved_at=resolved_at, version=version, committed_at=at - timedelta(milliseconds=30),
        enqueued_at=at - timedelta(milliseconds=20), started_at=at - timedelta(milliseconds=10),
        acknowledged_at=at, timestamp=at, latency_ms=30.0, **fields,
    )
