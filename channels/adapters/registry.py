"""Channel kind -> adapter class, by dotted path, imported on first use."""
from __future__ import annotations

import difflib
from importlib import import_module

from .base import ChannelAdapter, ChannelConfig, ChannelContext

ADAPTERS: dict[str, str] = {
    "webhook": "channels.adapters.webhook.WebhookAdapter",
    "woocommerce": "channels.adapters.woocommerce.WooCommerceAdapter",
    "magento": "channels.adapters.magento.MagentoAdapter",
    "amazon": "channels.adapters.amazon.AmazonAdapter",
    "shopify": "channels.adapters.shopify.ShopifyAdapter",
}


class UnknownChannelKind(LookupError):
    pass


def adapter_class(kind: str) -> type[ChannelAdapter]:
    try:
        dotted = ADAPTERS[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, ADAPTERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Available: {', '.join(sorted(ADAPTERS))}."
        raise UnknownChannelKind(f"No adapter for channel kind {kind!r}.{hint}") from None
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)


def adapter_for(config: ChannelConfig, context: ChannelContext) -> ChannelAdapter:
    return adapter_class(config.kind)(config, context)
