"""The `amazon` sandbox kind: SP-API (Listings Items, Feeds, notifications) and Login with Amazon.

Built from Amazon's published models and schemas (see `schemas/SOURCES.md`), never from the
adapters in `channels/adapters/`.
"""
from __future__ import annotations

from .store import AmazonStore

__all__ = ["AmazonStore"]
