"""The `woocommerce` sandbox kind (WooCommerce REST API v3); see `store.py`."""

from __future__ import annotations

from .store import WooCommerceStore

__all__ = ["WooCommerceStore"]
