"""The `magento` sandbox kind (Magento 2.4 / Adobe Commerce REST); see `store.py`."""

from __future__ import annotations

from .store import MagentoStore

__all__ = ["MagentoStore"]
