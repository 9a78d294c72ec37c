"""The `webhook` kind: signed JSON events POSTed in batches (search index, CMS, analytics).

Signature: `X-Syncsvc-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>` with
`X-Syncsvc-Timestamp`, so a receiver can refuse replays outside a tolerance (as Stripe does).
The events themselves (envelope, types, versions, ids) are built by `channels.contracts.events`
at the versions the channel pinned; their JSON Schemas are in `channels/contracts/schemas/`.
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

from ..contracts.events import item_events
from .base import ChannelAdapter, Outcome, PushItem, PushResult
from .http import retry_after_seconds, session_for


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
        """The events for these items, each at the version the channel pinned for its type."""
        return item_events(
            channel_id=self.config.id, settings=self.config.settings, items=items, occurred_at=datetime.now(timezone.utc)
        )

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
