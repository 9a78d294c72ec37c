"""The `webhook` kind: a merchant's endpoint receiving syncsvc's signed event batches.

Written as a careful receiver would write it from the published contract (Stripe-style
signing): verify the HMAC on the raw bytes in constant time, refuse stale timestamps,
validate the whole batch before touching state, apply each event id once, and ignore event
types it does not know. Nothing here comes from `channels/adapters/`: if the emulator shared
the sender's understanding of the format, both could be wrong and every test would pass.

    POST /webhook/{store}
    X-Syncsvc-Timestamp: 1700000000
    X-Syncsvc-Signature: v1=hex(HMAC-SHA256(secret, b"1700000000." + body))
    {"events": [{"id", "type", "schema_version", "occurred_at", "data": {"sku", ...}}]}

It understands `price.updated` v1 (plain decimal strings) and v2 (`{"amount", "currency"}`),
`inventory.updated` v1 and `product.updated` v1; other types and versions are accepted and
ignored. Control: `GET /_sandbox/webhook/{store}/events?since=` lists the events of accepted
batches as they were sent (how tests check what syncsvc emits against its schemas).
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import iso, parse_instant
from .messages import HttpError, Request, Response
from .store import FieldParser, Store
from .validation import decimal_text, integer, text

TIMESTAMP_TOLERANCE_S = 300
SIGNATURE_SCHEME = "v1"
TIMESTAMP_HEADER = "X-Syncsvc-Timestamp"
SIGNATURE_HEADER = "X-Syncsvc-Signature"
DELIVERY_HEADER = "X-Syncsvc-Delivery"
# How many event ids a store remembers for de-duplication; far more than any redelivery window.
SEEN_EVENT_IDS_LIMIT = 1_000_000

UNSIGNED_TIMESTAMP = re.compile(r"\d{1,12}")
CURRENCY = re.compile(r"[A-Z]{3}")
# How many received events the control API keeps for inspection (`GET .../events`).
RECEIVED_EVENTS_LIMIT = 10_000


class Verdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    STALE = "stale"
    UNCHECKED = "unchecked"

    @property
    def log_value(self) -> str:
        # The request log reports only whether the signature checked out; a stale request
        # counts as invalid there, and its error says why.
        return "invalid" if self is Verdict.STALE else self.value


@dataclass(frozen=True)
class SignatureCheck:
    verdict: Verdict
    detail: str = ""


def check_signature(secret: str | None, request: Request, now: float) -> SignatureCheck:
    """Verify `X-Syncsvc-Signature` over `{timestamp}.{raw body}`; no secret means unchecked."""
    if secret is None:
        return SignatureCheck(Verdict.UNCHECKED)
    timestamp = (request.header(TIMESTAMP_HEADER) or "").strip()
    signature_header = request.header(SIGNATURE_HEADER) or ""
    if not UNSIGNED_TIMESTAMP.fullmatch(timestamp):
        return SignatureCheck(Verdict.INVALID, f"{TIMESTAMP_HEADER} must be integer unix seconds")
    # Several "v1=" values may be sent while a secret is being rotated; one match is enough.
    candidates = [
        value.strip()
        for scheme, _, value in (part.strip().partition("=") for part in signature_header.split(","))
        if scheme == SIGNATURE_SCHEME
    ]
    if not candidates:
        return SignatureCheck(Verdict.INVALID, f"{SIGNATURE_HEADER} has no {SIGNATURE_SCHEME}= signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in candidates):
        return SignatureCheck(Verdict.INVALID, "no signature matches the body and timestamp")
    # Checked after the HMAC so an attacker learns nothing about the clock from a forgery.
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE_S:
        return SignatureCheck(Verdict.STALE, f"more than {TIMESTAMP_TOLERANCE_S} s from the receiver's clock")
    return SignatureCheck(Verdict.VALID)


@dataclass(frozen=True)
class Event:
    """A validated event; `changes` are the item fields it sets, None for a type we ignore."""

    id: str
    type: str
    sku: str | None
    changes: dict[str, Any] | None


def _price_changes(data: dict[str, Any], where: str) -> dict[str, Any]:
    if "price" not in data:
        raise HttpError(400, f"{where}.price is missing")
    return {
        "price": decimal_text(data["price"], f"{where}.price"),
        "compare_at_price": decimal_text(data.get("compare_at_price"), f"{where}.compare_at_price", nullable=True),
    }


def _money(value: Any, field: str, *, nullable: bool = False) -> tuple[str | None, str | None]:
    """(amount, currency) of a `{"amount": "12.50", "currency": "USD"}` object."""
    if value is None and nullable:
        return None, None
    if not isinstance(value, dict):
        raise HttpError(400, f"{field} must be an object with amount and currency, got {value!r}")
    currency = value.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        raise HttpError(400, f"{field}.currency must be an ISO 4217 code like \"USD\", got {currency!r}")
    return decimal_text(value.get("amount"), f"{field}.amount"), currency


def _price_changes_v2(data: dict[str, Any], where: str) -> dict[str, Any]:
    if "price" not in data:
        raise HttpError(400, f"{where}.price is missing")
    price, currency = _money(data["price"], f"{where}.price")
    compare_at_price, _ = _money(data.get("compare_at_price"), f"{where}.compare_at_price", nullable=True)
    return {"price": price, "compare_at_price": compare_at_price, "currency": currency}


def _inventory_changes(data: dict[str, Any], where: str) -> dict[str, Any]:
    if "available" not in data:
        raise HttpError(400, f"{where}.available is missing")
    return {"available": integer(data["available"], f"{where}.available")}


def _product_changes(data: dict[str, Any], where: str) -> dict[str, Any]:
    if "title" not in data:
        raise HttpError(400, f"{where}.title is missing")
    changes: dict[str, Any] = {"title": text(data["title"], f"{where}.title")}
    for name in ("handle", "description"):
        if name in data:
            changes[name] = text(data[name], f"{where}.{name}", nullable=True)
    if "attributes" in data:
        if not isinstance(data["attributes"], dict):
            raise HttpError(400, f"{where}.attributes must be an object, got {data['attributes']!r}")
        changes["attributes"] = data["attributes"]
    return changes


# The (type, schema_version) pairs this receiver understands; anything else is ignored.
EVENT_TYPES: dict[tuple[str, int], Callable[[dict[str, Any], str], dict[str, Any]]] = {
    ("price.updated", 1): _price_changes,
    ("price.updated", 2): _price_changes_v2,
    ("inventory.updated", 1): _inventory_changes,
    ("product.updated", 1): _product_changes,
}


def _non_empty_text(value: Any, field: str) -> str:
    if value is None:
        raise HttpError(400, f"{field} is missing")
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"{field} must be a non-empty string, got {value!r}")
    return value


def decode_batch(body: bytes) -> list[Any]:
    """The raw `events` list; HttpError(400) when the body is not `{"events": [...]}`."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HttpError(400, f"body is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise HttpError(400, 'body must be a JSON object with an "events" list')
    events: list[Any] = payload["events"]
    return events


def parse_event(raw: Any, index: int) -> Event:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise HttpError(400, f"{where} must be an object")
    event_id = _non_empty_text(raw.get("id"), f"{where}.id")
    event_type = _non_empty_text(raw.get("type"), f"{where}.type")
    if "schema_version" not in raw:
        raise HttpError(400, f"{where}.schema_version is missing")
    version = integer(raw["schema_version"], f"{where}.schema_version", minimum=1)
    changes_for = EVENT_TYPES.get((event_type, version))
    if changes_for is None:
        # A subscriber ignores types (and versions) it does not know (they may carry no SKU).
        return Event(event_id, event_type, None, None)
    data = raw.get("data")
    if not isinstance(data, dict):
        raise HttpError(400, f"{where}.data must be an object")
    sku = _non_empty_text(data.get("sku"), f"{where}.data.sku")
    return Event(event_id, event_type, sku, changes_for(data, f"{where}.data"))


@dataclass
class Examination:
    """What a webhook request is before anything is applied; also fills the request log."""

    signature: SignatureCheck
    events: list[Any] | None
    decode_error: HttpError | None


class WebhookStore(Store):
    """A merchant endpoint receiving syncsvc's signed events (`POST /webhook/{store}`).

    Configure `{"secret": ...}` to make it verify signatures; without one it accepts anything
    and logs `"signature": "unchecked"`.
    """

    kind = "webhook"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._seen_ids: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_EVENTS_LIMIT)
        self._received_seq = 0

    def item_defaults(self) -> dict[str, Any]:
        return {"compare_at_price": None, "handle": None, "description": None, "attributes": None, "currency": None}

    def item_field_parsers(self) -> dict[str, FieldParser]:
        return {
            **super().item_field_parsers(),
            "compare_at_price": lambda value, field: decimal_text(value, field, nullable=True, allow_number=True),
        }

    def describe(self, request: Request) -> None:
        self._examine(request)

    def handle(self, request: Request) -> Response:
        examination = self._examine(request)
        if request.subpath not in ("", "/"):
            raise HttpError(404, f"no route {request.method} {request.path}")
        if request.method != "POST":
            raise HttpError(405, f"{request.method} not allowed; events are POSTed", headers={"Allow": "POST"})
        check = examination.signature
        if check.verdict is Verdict.INVALID:
            raise HttpError(401, "invalid signature", detail=check.detail)
        if check.verdict is Verdict.STALE:
            raise HttpError(401, "timestamp outside tolerance", detail=check.detail)
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HttpError(415, "Content-Type must be application/json")
        if examination.decode_error is not None:
            raise examination.decode_error
        # Validate every event before applying any: a batch is all or nothing.
        raw_events = examination.events or []
        events = [parse_event(raw, index) for index, raw in enumerate(raw_events)]
        return Response(200, self._apply(events, raw_events, request, check))

    def _examine(self, request: Request) -> Examination:
        check = check_signature(self.config_value("secret"), request, time.time())
        events: list[Any] | None = None
        decode_error: HttpError | None = None
        try:
            events = decode_batch(request.body)
        except HttpError as error:
            decode_error = error
        request.log["events"] = len(events) if events is not None else 0
        request.log["signature"] = check.verdict.log_value
        delivery = request.header(DELIVERY_HEADER)
        if delivery:
            request.log["delivery"] = delivery
        return Examination(check, events, decode_error)

    def _apply(self, events: list[Event], raw_events: list[Any], request: Request,
               check: SignatureCheck) -> dict[str, int]:
        applied = duplicates = ignored = 0
        with self.lock:
            for event, raw in zip(events, raw_events, strict=True):
                if event.id in self._seen_ids:
                    duplicates += 1
                    self._keep_received(raw, "duplicate", request, check)
                    continue
                self._remember(event.id)
                if event.changes is None or event.sku is None:
                    ignored += 1
                    self._keep_received(raw, "ignored", request, check)
                    continue
                self._keep_received(raw, "applied", request, check)
                item = self.item_for_update(event.sku)
                item.update(event.changes)
                item["updated_at"] = iso(time.time())
                item["writes"] += 1
                applied += 1
        return {"received": len(events), "applied": applied, "duplicates": duplicates, "ignored": ignored}

    def _keep_received(self, raw: Any, outcome: str, request: Request, check: SignatureCheck) -> None:
        self._received_seq += 1
        self._received.append({
            "seq": self._received_seq,
            "received_at": iso(request.received_at),
            "ts": round(request.received_at, 6),
            "delivery": request.header(DELIVERY_HEADER),
            "signature": check.verdict.log_value,
            "outcome": outcome,
            "event": raw,
        })

    def control_resource(self, request: Request, resource: str) -> Response | None:
        """`GET /_sandbox/webhook/{store}/events?since=`: every event of the batches it
        accepted, exactly as sent, with how it was taken (applied, duplicate, ignored) and
        whether the batch's signature checked out."""
        if resource != "events":
            return None
        if request.method != "GET":
            raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": "GET"})
        since_text = request.query.get("since", "")
        try:
            since = parse_instant(since_text) if since_text else None
        except ValueError:
            raise HttpError(400, f"since must be unix seconds or an ISO 8601 time, got {since_text!r}") from None
        with self.lock:
            received = [entry for entry in self._received if since is None or entry["ts"] > since]
        return Response(200, {"events": received})

    def _remember(self, event_id: str) -> None:
        self._seen_ids.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN_EVENT_IDS_LIMIT:
            self._seen_ids.discard(self._seen_order.popleft())
