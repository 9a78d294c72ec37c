"""What an inbound webhook says, in the channel-agnostic terms the order service applies."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from syncsvc.parsers import nul_paths


class WebhookRefused(Exception):
    """The request is not a webhook we accept; `status` is the HTTP answer (nothing is stored)."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidSignature(WebhookRefused):
    status = 401


class MalformedPayload(WebhookRefused):
    status = 400


class LineStatus(str, Enum):
    """Where the channel says an order line stands. Ordered: an order only moves forward."""

    OPEN = "open"            # placed, not paid yet (pending, authorized, on-hold)
    PAID = "paid"
    FULFILLED = "fulfilled"  # shipped
    CANCELLED = "cancelled"
    # The money went back, and the channel says nothing of which units went back on the
    # shelf (WooCommerce's `refunded`, Magento's `closed`): the sale stands, as the store's own
    # stock does; a restock it does not report is for the merchant to record (or for
    # reconciliation to find).
    REFUNDED = "refunded"


@dataclass(frozen=True)
class LineReport:
    """One order line as the channel reports it now."""

    line_id: str
    sku: str
    quantity: int
    status: LineStatus


@dataclass(frozen=True)
class Restock:
    """Units of an order line that a refund put back on the shelf."""

    refund_id: str
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class StockReport:
    """The channel's own stock figure for a SKU (`inventory_levels/update` and the like)."""

    sku: str = ""
    external_id: str = ""  # e.g. Shopify's inventory item id, when the body names no SKU
    available: int = 0


@dataclass(frozen=True)
class ParsedWebhook:
    """A verified webhook: its dedupe key and what it tells about orders or stock.

    `ignored` says why a webhook changes nothing (a topic we do not write back, a ping).
    """

    key: str
    topic: str
    triggered_at: datetime | None = None
    order_id: str = ""
    lines: tuple[LineReport, ...] = ()
    restocks: tuple[Restock, ...] = ()
    stock: tuple[StockReport, ...] = ()
    ignored: str = ""


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, case-insensitively (WSGI and proxies change the case)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


def verify_base64_hmac_sha256(*, secret: str, body: bytes, signature: str) -> None:
    """base64(HMAC-SHA256(secret, raw body)), compared in constant time on the raw bytes."""
    if not secret:
        raise InvalidSignature("this channel has no webhook_secret: set it in its credentials")
    if not signature:
        raise InvalidSignature("missing signature header")
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise InvalidSignature("signature does not match the body")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def news_digest(status, lines: tuple[LineReport, ...] | list[LineReport]) -> str:
    """A short digest of what a polled order says (its status and lines): part of its dedupe
    key, so two changes within its timestamp's resolution (one second) are two events while
    the same version polled again is one."""
    news = (status, [(line.line_id, line.quantity, line.status.value) for line in lines])
    return hashlib.sha256(repr(news).encode()).hexdigest()[:16]


def quantity(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayload(f"{where}: quantity must be a non-negative integer, got {value!r}")
    return value


def text_id(value, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise MalformedPayload(f"{where}: must be an id (number or string), got {value!r}")
    return str(value)


def parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC: PostgreSQL refuses offsets past 15:59 that Python reads (up to 23:59); a time
        # whose UTC leaves the years 1-9999 is as good as none.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def json_object(body: bytes) -> dict:
    """The body as a JSON object. Nesting deeper than the parser recurses and NUL characters
    (which no PostgreSQL text or jsonb value holds) are malformed, like broken JSON."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedPayload(f"body is not JSON: {error}") from None
    except RecursionError:
        raise MalformedPayload("body is not JSON we accept: nested too deeply") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("body must be a JSON object")
    where = nul_paths(payload)
    if where:
        raise MalformedPayload(f"{where[0]}: null characters are not allowed")
    return payload


def objects_in(value, where: str):
    """(path, object) for each element of a list of JSON objects; MalformedPayload otherwise."""
    if not isinstance(value, list):
        raise MalformedPayload(f"{where}: must be a list")
    for index, item in enumerate(value):
        path = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise MalformedPayload(f"{path}: must be an object")
        yield path, item
