"""Which emulator serves which channel kind: a plain dict of dotted paths, imported lazily.

Adding a kind is one line here and one module beside `webhook.py`; nothing registers itself
at import time, and a kind's module is only imported when a request first names it.
"""
from __future__ import annotations

import difflib
import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

EMULATORS: dict[str, str] = {
    "webhook": "channels.sandbox.webhook.WebhookStore",
    "woocommerce": "channels.sandbox.woocommerce.WooCommerceStore",
    "magento": "channels.sandbox.magento.MagentoStore",
    "amazon": "channels.sandbox.amazon.AmazonStore",
    "shopify": "channels.sandbox.shopify.store.ShopifyStore",
}


class UnknownKind(LookupError):
    """No emulator is registered under that kind."""

    def __init__(self, kind: str) -> None:
        message = f"no such sandbox kind: {kind!r}"
        suggestions = difflib.get_close_matches(kind, EMULATORS, n=1)
        if suggestions:
            message += f". Did you mean {suggestions[0]!r}?"
        message += f" (available: {', '.join(sorted(EMULATORS))})"
        super().__init__(message)
        self.kind = kind
        self.message = message


def kinds() -> list[str]:
    return sorted(EMULATORS)


def store_class(kind: str) -> type[Store]:
    """The Store subclass emulating `kind`; raises UnknownKind."""
    try:
        dotted_path = EMULATORS[kind]
    except KeyError:
        raise UnknownKind(kind) from None
    return _import(dotted_path)


@functools.cache
def _import(dotted_path: str) -> type[Store]:
    module_name, _, attribute = dotted_path.rpartition(".")
    cls: type[Store] = getattr(importlib.import_module(module_name), attribute)
    return cls
