"""The one interface every channel adapter implements, and the data it speaks in.

Adapters receive and return small frozen dataclasses, never ORM objects, and are the only
code that speaks HTTP to a channel.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar


@dataclass(frozen=True)
class ChannelConfig:
    id: int
    name: str
    kind: str
    base_url: str
    credentials: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PushItem:
    """One aspect of one SKU, as the channel must be shown it now."""

    sku: str
    aspect: str  # price | inventory | content
    version: int  # the Change id this state includes; stable across retries
    price: Decimal | None = None
    compare_at_price: Decimal | None = None
    available: int | None = None
    handle: str = ""
    title: str = ""
    description: str = ""
    attributes: dict = field(default_factory=dict)


class Outcome(str, enum.Enum):
    OK = "ok"
    RETRY = "retry"  # network, 5xx: try again after a backoff
    THROTTLED = "throttled"  # 429 or the channel's own throttle: not a failure, wait and resend
    AUTH = "auth"  # credentials refused
    PERMANENT = "permanent"  # the channel refuses this item as it is: retrying won't help


@dataclass(frozen=True)
class PushResult:
    sku: str
    aspect: str
    outcome: Outcome
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    acknowledged_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class ChannelAdapter(ABC):
    """Base of one channel kind.

    Subclasses declare `kind`, the `aspects` they can deliver, their `batch_size` (items per
    bulk call) and the credential fields a channel of the kind needs.
    """

    kind: ClassVar[str]
    aspects: ClassVar[frozenset[str]]
    batch_size: ClassVar[int] = 100
    credential_fields: ClassVar[tuple[str, ...]] = ()
    default_rate_per_s: ClassVar[float] = 10.0
    default_burst: ClassVar[int] = 10

    def __init__(self, config: ChannelConfig):
        self.config = config

    @classmethod
    def validate_credentials(cls, credentials: dict) -> dict[str, str]:
        """Field -> message for what a channel of this kind lacks."""
        return {
            name: f"required for a {cls.kind} channel"
            for name in cls.credential_fields
            if not credentials.get(name)
        }

    @abstractmethod
    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Deliver these items in as few calls as the channel allows; one result per item."""

    def fetch(self, skus: Sequence[str]) -> dict[str, dict]:
        """Live values per SKU as the channel shows them (for verification and drift)."""
        raise NotImplementedError(f"the {self.kind} channel cannot be read back")
