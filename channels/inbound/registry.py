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
}


def inbound_parser(kind: str) -> ModuleType:
    """The parser module of a kind; a kind without webhooks is refused with a 404-style error."""
    path = PARSERS.get(kind)
    if path is None:
        near = difflib.get_close_matches(kind, PARSERS, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        polled = " Magento has no order webhooks: syncsvc polls its orders." if kind == "magento" else ""
        error = WebhookRefused(f"channels of kind {kind!r} send no webhooks here.{polled}{hint}")
        error.status = 404
        raise error
    return import_module(path)
