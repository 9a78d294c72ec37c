"""The Shopify channel adapter (Admin GraphQL API); see `adapter.py`."""
from __future__ import annotations

from .adapter import ShopifyAdapter

__all__ = ["ShopifyAdapter"]
