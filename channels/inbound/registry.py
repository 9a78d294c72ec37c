"""Channel kind -> the module that verifies and parses its webhooks (imported lazily)."""
from __future__ import annotations

import difflib
from importlib import import_module
from types import ModuleType

from .base import WebhookRefused

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
