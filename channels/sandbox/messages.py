"""The sandbox's view of an HTTP exchange: a parsed request, a JSON response, an HTTP error.

Kept apart from the socket handling in `server.py` so emulators and the control API can be
written (and read) as plain functions from `Request` to `Response`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


@dataclass
class Request:
    """One request as an emulator sees it; `subpath` is what follows `/{kind}/{store}`."""

    method: str
    target: str  # the raw request target, path and query, as logged
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    received_at: float
    subpath: str = ""
    # Facts an emulator learns while handling (events in the body, signature verdict); the
    # store copies them into the request log entry.
    log: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is `{}`. Raises HttpError(400) otherwise."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HttpError(400, f"body is not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise HttpError(400, "body must be a JSON object")
        return value


@dataclass
class Response:
    """A JSON answer (or `raw` bytes of `content_type`: a file, an XML storage answer); the
    server adds Content-Type and Content-Length."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode()

    @property
    def error(self) -> str | None:
        message = self.body.get("error") if isinstance(self.body, dict) else None
        return message if isinstance(message, str) else None


class HttpError(Exception):
    """An answer other than success, raised from deep inside a handler: `{"error": message}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.detail = detail

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.message}
        if self.detail:
            body["detail"] = self.detail
        return Response(self.status, body, dict(self.headers))
