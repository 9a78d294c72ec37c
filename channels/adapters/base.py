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
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class ChannelConfig:
    id: int
    name: str
    kind: str
    base_url: str
    credentials: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MappedAttribute:
    """A PIM attribute's value as one channel field (`AttributeMapping`): `target` is the
    Shopify metafield `namespace.key`, the WooCommerce attribute name, the Amazon attribute
    or the Magento attribute code; `type` the Shopify metafield type."""

    target: str
    value: object
    type: str = ""


@dataclass(frozen=True)
class PushItem:
    """One aspect of one SKU, as the channel must be shown it now.

    `external_ids` are the channel's own ids for the SKU as resolved before (a listing), e.g.
    Shopify's variant, product and inventory item ids; empty when not resolved yet.
    """

    sku: str
    aspect: str  # price | inventory | content
    version: int  # the Change id this state includes; stable across retries
    external_ids: dict = field(default_factory=dict)
    price: Decimal | None = None
    compare_at_price: Decimal | None = None
    available: int | None = None
    handle: str = ""
    title: str = ""
    description: str = ""
    attributes: dict = field(default_factory=dict)
    # Content items: the attributes as this channel's fields, through its mappings (a
    # store adapter sends these, never the raw `attributes`; see services/mapping.py).
    mapped_attributes: tuple[MappedAttribute, ...] = ()


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
    # Ids the adapter resolved for the SKU (stored as the channel's listing for next time);
    # `listed=False` means the channel has no such SKU.
    external_ids: dict | None = None
    listed: bool | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class RefreshPoll:
    """Where one remote bulk job of a catalog refresh stands (`ChannelAdapter.refresh_poll`)."""

    done: bool  # the remote job finished (successfully or not)
    ok: tuple[str, ...] = ()  # SKUs the channel confirmed
    failed: dict[str, str] = field(default_factory=dict)  # SKU -> the channel's message
    retry_after: float | None = None  # poll again after this many seconds (when not done)
    state: dict = field(default_factory=dict)  # updated remote state to store


class ChannelThrottled(Exception):
    """A read (`fetch`) the rate limit does not allow now; try again after `retry_after` s."""

    def __init__(self, retry_after: float, message: str = ""):
        super().__init__(message or f"throttled: retry after {retry_after:.2f}s")
        self.retry_after = retry_after


# Pages one order poll reads at most (100 orders each): it re-reads the orders of its 2-minute
# overlap every time, so this bounds how many orders may change in 2 minutes before it stops
# reaching new ones (5,000: about 40 a second, sustained).
ORDER_POLL_PAGES = 50


@dataclass(frozen=True)
class PolledOrder:
    """One order as the channel's order list returned it (`orders_updated_since`): its id,
    its last-modified time as the channel wrote it, and its JSON."""

    order_id: str
    updated_at: str
    body: bytes


@dataclass(frozen=True)
class LiveValue:
    """What the channel shows for a SKU now (read back for verification and drift)."""

    sku: str
    listed: bool
    price: Decimal | None = None
    available: int | None = None
    external_ids: dict = field(default_factory=dict)


class ChannelContext(Protocol):
    """What an adapter may ask of syncsvc while it talks to its channel.

    Rate limits are global per channel (every worker on every host shares them) and adaptive:
    an adapter tells the limiter what the channel reported. Nothing here ever sleeps.
    """

    def acquire(
        self, cost: float = 1.0, *, bucket: str = "default", spend: float | None = None, then: float = 0.0
    ) -> float:
        """Take `cost` from the channel's bucket: 0.0 when taken, else seconds to wait (the
        adapter then answers THROTTLED with that `retry_after` for what it did not send).
        `spend`: what the call will keep after the channel refunds the rest (Shopify's actual
        cost), when known; refused calls queue behind each other by it. `then`: the cost of
        the call that must follow this one (a write after its read): taken only when the
        bucket holds both."""

    def observe(
        self,
        *,
        bucket: str = "default",
        available: float | None = None,
        maximum: float | None = None,
        restore_rate: float | None = None,
        refund: float = 0.0,
    ) -> None:
        """Learn from the channel: its reported bucket state, or a refund of cost charged up
        front but not spent."""

    def pause(self, seconds: float, *, bucket: str = "default") -> None:
        """The channel asked us to wait (429 with Retry-After): nobody sends until then."""

    def cache_get(self, name: str) -> str | None:
        """A value shared by every worker for this channel (an access token), or None."""

    def cache_set(self, name: str, value: str, ttl_s: float) -> None:
        """Share a value for `ttl_s` seconds; stored encrypted."""

    def cache_delete(self, name: str) -> None: ...


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
    # Catalog refresh through the channel's bulk path (`refresh_start` / `refresh_poll`).
    supports_bulk_refresh: ClassVar[bool] = False
    refresh_chunk_size: ClassVar[int] = 500  # items per remote bulk job

    # Default bucket per kind, overridable per channel with settings `rate_per_s` / `burst`.
    # For cost-based channels (Shopify) the units are the channel's own points.

    def __init__(self, config: ChannelConfig, context: ChannelContext):
        self.config = config
        self.context = context

    @classmethod
    def bucket_defaults(cls, settings: dict) -> dict[str, tuple[float, float]]:
        """Rate-limit buckets (name -> rate per second, burst) before the channel says more."""
        return {"default": (float(settings.get("rate_per_s", cls.default_rate_per_s)), float(settings.get("burst", cls.default_burst)))}

    def setting(self, name: str, default):
        return self.config.settings.get(name, default)

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

    def fetch(self, skus: Sequence[str]) -> dict[str, LiveValue]:
        """Live values per SKU as the channel shows them (for verification and drift); SKUs
        the channel lacks come back with `listed=False`. Raises ChannelThrottled rather than
        waiting when the rate limit does not allow the reads now."""
        raise NotImplementedError(f"the {self.kind} channel cannot be read back")

    def orders_updated_since(
        self, since: datetime, *, page_size: int = 100, max_pages: int = ORDER_POLL_PAGES
    ) -> list[PolledOrder]:
        """Orders changed since `since` (an aware time; each kind writes it in its channel's
        own format), oldest first, at most `max_pages` pages: the caller's cursor moves on and
        the next poll continues. Raises ChannelThrottled when the rate limit says wait, and the
        read's error when the channel fails."""
        raise NotImplementedError(f"the {self.kind} channel's orders are not polled")

    def preview(self, items: Sequence[PushItem]) -> dict[str, dict]:
        """SKU -> the request bodies `push` would send for these items, built by the push's own
        body builders, with no call to the channel (a shadow channel's log)."""
        return {
            item.sku: {"aspects": [i.aspect for i in items if i.sku == item.sku]} for item in items
        }

    def refresh_start(self, items: Sequence[PushItem]) -> dict:
        """Start one remote bulk job for these content items; its JSON-able remote state (ids).
        Raises ChannelThrottled when the rate limit says wait."""
        raise NotImplementedError(f"the {self.kind} channel has no bulk refresh")

    def refresh_poll(self, state: dict) -> RefreshPoll:
        """Where the job started by `refresh_start` stands; never sleeps."""
        raise NotImplementedError(f"the {self.kind} channel has no bulk refresh")

    @staticmethod
    def results_for(items: Sequence[PushItem], outcome: Outcome, code: str = "", message: str = "",
                    retry_after: float | None = None) -> list[PushResult]:
        """The same result for every item (a whole call that failed or was throttled)."""
        return [PushResult(item.sku, item.aspect, outcome, code, message, retry_after) for item in items]
