"""The `amazon` kind: Selling Partner API listings (prices and quantities), see `adapter`."""
from __future__ import annotations

from .adapter import AmazonAdapter

__all__ = ["AmazonAdapter"]
