"""The naive baseline the benchmark compares the engine with: one Celery task per change per
channel, no coalescing, no batching, one signed HTTP POST each.

It is what a first version of a sync service usually looks like (`post_save` ->
`push.delay(...)`), written fairly: the task loads the variant's *current* state (so a late
task never sends an older value than the DB holds when it runs), keeps one pooled HTTP session
per process (keep-alive, like the adapter), signs exactly as the webhook adapter does so the
sandbox accepts it, and does not retry (a failure is recorded and counted).

Each task appends one JSON record to a Redis list (`run_key`) with its hop timestamps (unix
seconds): committed (the Change row's time, the same origin the engine's `latency_ms` uses),
enqueued (the after-commit hook sent the task), started (the task began), acknowledged (the
channel answered 2xx) and the HTTP status. The benchmark reads the list back.

Runs in its own worker: `celery -A syncsvc worker -Q bench --include benchmarks.naive`.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timezone

import requests

from syncsvc.celery import app

QUEUE = "bench"
TASK_NAME = "bench.naive_push"
EVENT_TYPES = {"price": "price.updated", "inventory": "inventory.updated", "content": "product.updated"}

_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    pid = os.getpid()  # never reuse a socket across the prefork fork
    session = _sessions.get(pid)
    if session is None:
        _sessions.clear()
        session = _sessions[pid] = requests.Session()
    return session


def _event(change_id: int, channel_id: int, aspect: str, snapshot, available: int) -> dict:
    if aspect == "price":
        data = {
            "sku": snapshot.sku,
            "price": str(snapshot.price),
            "compare_at_price": None if snapshot.compare_at_price is None else str(snapshot.compare_at_price),
        }
    elif aspect == "inventory":
        data = {"sku": snapshot.sku, "available": available}
    else:
        data = {"sku": snapshot.sku, "handle": snapshot.handle, "title": snapshot.title,
                "description": snapshot.description, "attributes": snapshot.attributes}
    return {
        "id": f"naive-{channel_id}-{change_id}",
        "type": EVENT_TYPES[aspect],
        "schema_version": 1,
        "occurred_at": datetime.now(timezone.utc).isoformat(),
        "data": data,
    }


@app.task(name=TASK_NAME, queue=QUEUE, ignore_result=True, acks_late=True)
def naive_push(
    channel_id: int, change_id: int, variant_id: int, aspect: str, committed_at: float, enqueued_at: float, run_key: str
) -> None:
    from channels.adapters.webhook import sign
    from channels.models import Channel
    from channels.redis_client import get_redis
    from inventory.selectors import variants_snapshot

    started_at = time.time()
    channel = Channel.objects.get(pk=channel_id)
    snapshot = variants_snapshot(variant_ids=[variant_id]).get(variant_id)
    status, acknowledged_at = 0, None
    if snapshot is not None:
        event = _event(change_id, channel_id, aspect, snapshot, channel.shown_available(snapshot.sellable))
        body = json.dumps({"events": [event]}, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Syncsvc-Timestamp": str(timestamp),
            "X-Syncsvc-Signature": sign(channel.credentials.get("secret", ""), timestamp, body),
            "X-Syncsvc-Delivery": str(uuid.uuid4()),
        }
        try:
            response = _session().post(channel.base_url, data=body, headers=headers, timeout=10)
            status = response.status_code
            if 200 <= status < 300:
                acknowledged_at = time.time()
        except requests.RequestException:
            status = -1
    record = {
        "channel": channel_id,
        "change": change_id,
        "aspect": aspect,
        "committed": committed_at,
        "enqueued": enqueued_at,
        "started": started_at,
        "acknowledged": acknowledged_at,
        "status": status,
    }
    get_redis().rpush(run_key, json.dumps(record))
