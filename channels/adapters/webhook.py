"""The `webhook` kind: signed JSON events POSTed in batches (search index, CMS, analytics).

Signature: `X-Syncsvc-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>` with
`X-Syncsvc-Timestamp`, so a receiver can refuse replays outside a tolerance (as Stripe does).
Event ids are derived from (channel, SKU, aspect, version): a batch resent after a crash
carries the same ids and a receiver that dedupes applies it once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

import requests
from django.conf import settings

from .base import ChannelAdapter, Outcome, PushItem, PushResult
from .http import retry_after_seconds, session_for

SCHEMA_VERSION = 1
EVENT_TYPES = {"price": "price.updated", "inventory": "inventory.updated", "content": "product.updated"}
_EVENT_NAMESPACE = uuid.UUID("6f1c7a52-4e0b-4f55-9a43-5a3f1f0c2d11")


def _money(value) -> str:
    return format(value, "f")  # never exponent notation ("1E+1")


def _event_data(item: PushItem) -> dict:
    if item.aspect == "price":
        return {
            "sku": item.sku,
            "price": _money(item.price),
            "compare_at_price": None if item.compare_at_price is None else _money(item.compare_at_price),
        }
    if item.aspect == "inventory":
        return {"sku": item.sku, "available": item.available}
    return {
        "sku": item.sku,
        "handle": item.handle,
        "title": item.title,
        "description": item.description,
        "attributes": item.attributes,
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


class WebhookAdapter(ChannelAdapter):
    kind = "webhook"
    aspects = frozenset({"price", "inventory", "content"})
    batch_size = 100
    credential_fields = ("secret",)
    default_rate_per_s = 50.0
    default_burst = 50

    def events(self, items: Sequence[PushItem]) -> list[dict]:
        occurred_at = datetime.now(timezone.utc).isoformat()
        return [
            {
                "id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{self.config.id}:{item.sku}:{item.aspect}:{item.version}")),
                "type": EVENT_TYPES[item.aspect],
                "schema_version": SCHEMA_VERSION,
                "occurred_at": occurred_at,
                "data": _event_data(item),
            }
            for item in items
        ]

    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        wait = self.context.acquire(1)
        if wait > 0:
            return self.results_for(items, Outcome.THROTTLED, "rate_limited", "", wait)
        body = json.dumps({"events": self.events(items)}, separators=(",", ":")).encode()
        try:
            response = self._post(body)
            if response.status_code in (401, 403):
                # Receivers rotating secrets or restarting answer a stray 401: one fresh
                # signature (new timestamp) is worth a try before calling it an auth failure.
                response = self._post(body)
        except requests.RequestException as exc:
            return self.results_for(items, Outcome.RETRY, "network_error", str(exc)[:500])
        acknowledged_at = datetime.now(timezone.utc)
        status = response.status_code
        if 200 <= status < 300:
            return [PushResult(item.sku, item.aspect, Outcome.OK, acknowledged_at=acknowledged_at) for item in items]
        message = response.text[:500]
        if status == 429:
            retry_after = retry_after_seconds(response, 1.0)
            self.context.pause(retry_after)
            return self.results_for(items, Outcome.THROTTLED, "http_429", message, retry_after)
        if status in (401, 403):
            return self.results_for(items, Outcome.AUTH, f"http_{status}", message)
        if status >= 500 or status in (408, 409, 425):
            return self.results_for(items, Outcome.RETRY, f"http_{status}", message, retry_after_seconds(response))
        return self.results_for(items, Outcome.PERMANENT, f"http_{status}", message)

    def _post(self, body: bytes) -> requests.Response:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Syncsvc-Timestamp": str(timestamp),
            "X-Syncsvc-Signature": sign(self.config.credentials.get("secret", ""), timestamp, body),
            "X-Syncsvc-Delivery": str(uuid.uuid4()),
        }
        return session_for(self.config.id).post(
            self.config.base_url, data=body, headers=headers, timeout=settings.SYNCSVC["HTTP_TIMEOUT_S"]
        )
