"""A catalog refresh for channels whose bulk path is their ordinary batch call (WooCommerce's
`POST /products/batch`, up to 100 updates per call): `refresh_start` sends the chunk's batch
calls at once and answers a finished remote state; `refresh_poll` only reads it back.

Chunks are one batch call by default (`refresh_chunk_size` = the batch limit), so a throttled
start resends nothing that went through: it raises ChannelThrottled before any call, or the
whole chunk goes again later (content writes are idempotent).
"""
from __future__ import annotations

from collections.abc import Sequence

from .base import ChannelThrottled, Outcome, PushItem, RefreshPoll
from .rest import CallError


def refresh_by_push(adapter, items: Sequence[PushItem]) -> dict:
    """Push the content items now; the state says which SKUs the channel took or refused.
    Raises ChannelThrottled when the limit stops it, CallError when the channel fails it."""
    results = adapter.push(items)
    waits = [r.retry_after or 1.0 for r in results if r.outcome is Outcome.THROTTLED]
    if waits:
        raise ChannelThrottled(max(waits), "the batch call was throttled")
    retry = next((r for r in results if r.outcome in (Outcome.RETRY, Outcome.AUTH)), None)
    if retry is not None:
        raise CallError(retry.outcome, retry.code, retry.message)
    return {
        "done": True,
        "ok": [r.sku for r in results if r.ok],
        "failed": {r.sku: f"{r.code}: {r.message}"[:255] for r in results if not r.ok},
    }


def poll_pushed(state: dict) -> RefreshPoll:
    return RefreshPoll(done=True, ok=tuple(state.get("ok") or ()), failed=dict(state.get("failed") or {}), state=state)
