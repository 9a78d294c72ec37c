"""Failures and slowness injected into a store's real API through the control API."""
from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .messages import HttpError, Response
from .validation import integer, number, reject_unknown_fields

FAULT_FIELDS = ("status", "count", "seconds", "retry_after", "latency_ms", "clear")
MAX_LATENCY_MS = 600_000.0


@dataclass(frozen=True)
class InjectedFault:
    """One answer the store gives instead of handling the request."""

    status: int
    retry_after: int | None

    def response(self) -> Response:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return Response(self.status, {"error": f"{phrase} (injected by the sandbox)"}, headers)


class Faults:
    """A store's injected faults: one status fault (next n requests or for s seconds) and a latency.

    A new status fault replaces the previous one rather than queueing behind it, so what a
    test posted last is what the store does. Not locked itself: the store's lock guards it.
    Times are `time.monotonic()` so a wall-clock step cannot end or extend a fault.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._status: int | None = None
        self._remaining: int | None = None
        self._until: float | None = None
        self._retry_after: int | None = None
        self.latency_s = 0.0

    def configure(self, body: dict[str, Any], now: float) -> None:
        """Apply a control body; validates all of it first so bad input changes nothing."""
        reject_unknown_fields(body, FAULT_FIELDS)
        if not body:
            raise HttpError(400, "give one of: status (with count or seconds), latency_ms, clear")
        clear = body.get("clear", False)
        if clear is not True and "clear" in body:
            raise HttpError(400, f"clear must be true, got {clear!r}")
        latency_ms = None
        if "latency_ms" in body:
            latency_ms = number(body["latency_ms"], "latency_ms", maximum=MAX_LATENCY_MS)
        status_fault = self._parse_status_fault(body, now)

        if clear:
            self.clear()
        if latency_ms is not None:
            self.latency_s = latency_ms / 1000.0
        if status_fault is not None:
            self._status, self._remaining, self._until, self._retry_after = status_fault

    @staticmethod
    def _parse_status_fault(body: dict[str, Any], now: float) -> tuple[int, int | None, float | None, int | None] | None:
        if "status" not in body:
            for dependent in ("count", "seconds", "retry_after"):
                if dependent in body:
                    raise HttpError(400, f"{dependent} needs a status")
            return None
        status = integer(body["status"], "status")
        if not 400 <= status <= 599:
            raise HttpError(400, f"status must be an HTTP error status (400-599), got {status}")
        if ("count" in body) == ("seconds" in body):
            raise HttpError(400, "status needs exactly one of count or seconds")
        remaining = integer(body["count"], "count", minimum=1) if "count" in body else None
        until = None
        if "seconds" in body:
            seconds = number(body["seconds"], "seconds")
            if seconds <= 0:
                raise HttpError(400, f"seconds must be a number > 0, got {body['seconds']!r}")
            until = now + seconds
        # Real channels send Retry-After on 429 (Shopify, WooCommerce behind nginx, SP-API);
        # an integer, as RFC 9110 requires delay-seconds to be.
        retry_after = 1 if status == 429 else None
        if "retry_after" in body:
            retry_after = integer(body["retry_after"], "retry_after", minimum=0)
        return status, remaining, until, retry_after

    def take(self, now: float) -> InjectedFault | None:
        """The fault for the request arriving now, if any; a counted fault uses one up."""
        if self._status is None:
            return None
        if self._until is not None and now >= self._until:
            self._status = self._until = self._retry_after = None
            return None
        fault = InjectedFault(self._status, self._retry_after)
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                self._status = self._remaining = self._retry_after = None
        return fault

    def view(self, now: float) -> dict[str, Any]:
        active = self._status is not None and (self._until is None or now < self._until)
        return {
            "status": self._status if active else None,
            "remaining": self._remaining if active else None,
            "seconds_left": round(self._until - now, 3) if active and self._until is not None else None,
            "retry_after": self._retry_after if active else None,
            "latency_ms": self.latency_s * 1000.0,
        }
