"""Channel kind -> the module that verifies and parses its webhooks and reads its polled
orders (imported lazily)."""
from __future__ import annotations

import difflib
from importlib import import_module
from types import ModuleType

from .base import ParsedWebhook, WebhookRefused

# A kind whose orders syncsvc polls declares `POLL_TOPIC` (the topic its polled orders are
# stored under) and `parse_polled(body=...)`; a kind that sends no webhooks has `WEBHOOKS = False`.
PARSERS = {
    "shopify": "channels.inbound.shopify",
    "woocommerce": "channels.inbound.woocommerce",
    "amazon": "channels.inbound.amazon",
    "magento": "channels.inbound.magento",  # polled, not a webhook (its `WEBHOOKS` is False)
}


def inbound_parser(kind: str, *, webhook: bool = False) -> ModuleType:
    """The parser module of a kind; with `webhook`, only a kind that sends webhooks (else a
    404-style refusal)."""
    path = PARSERS.get(kind)
    module = import_module(path) if path else None
    if module is None or (webhook and not getattr(module, "WEBHOOKS", True)):
        near = difflib.get_close_matches(kind, [name for name in PARSERS if name != kind], n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        polled = " Magento has no order webhooks: syncsvc polls its orders." if kind == "magento" else ""
        error = WebhookRefused(f"channels of kind {kind!r} send no webhooks here.{polled}{hint}")
        error.status = 404
        raise error
    return module


def poll_topic(kind: str) -> str | None:
    """The topic a kind's polled orders are stored under (its poll's cursor reads only those);
    None for a kind whose orders are not polled."""
    path = PARSERS.get(kind)
    return getattr(import_module(path), "POLL_TOPIC", None) if path else None


def polled_kinds() -> tuple[str, ...]:
    """The kinds whose orders syncsvc polls (those declaring a `POLL_TOPIC`)."""
    return tuple(kind for kind in PARSERS if poll_topic(kind))


def polled_beside_webhooks(kind: str, topic: str) -> bool:
    """Whether `topic` is the poll's of a kind that also sends webhooks (WooCommerce): news such
    an event brings first is news a webhook should have brought."""
    return topic == poll_topic(kind) and getattr(inbound_parser(kind), "WEBHOOKS", True)


def parse_stored(kind: str, *, topic: str, headers, body: bytes) -> ParsedWebhook:
    """A stored event read again: an order the poll fetched by its kind's poll reading (it
    came with no webhook headers), anything else as the webhook it was."""
    parser = inbound_parser(kind)
    if topic == poll_topic(kind):
        return parser.parse_polled(body=body)
    return parser.parse(headers=headers, body=body)
