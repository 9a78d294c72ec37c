"""What a store's real API was asked and answered, for tests and merchants to inspect."""
from __future__ import annotations

from collections import deque
from typing import Any

from .clock import iso
from .messages import Request, Response


class RequestLog:
    """The last `limit` real-API requests of one store, oldest first.

    Not locked itself: the owning store appends and reads under its own lock.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0

    def record(self, request: Request, response: Response, finished_at: float) -> dict[str, Any]:
        self._seq += 1
        # Whole microseconds, as "time" shows, so either one given back as `since` means the same.
        received_at = round(request.received_at, 6)
        entry: dict[str, Any] = {
            "seq": self._seq,
            "time": iso(received_at),
            "ts": received_at,
            "method": request.method,
            "path": request.target,
            "status": response.status,
            "duration_ms": round((finished_at - request.received_at) * 1000, 3),
            **request.log,
        }
        if response.status >= 400 and response.error:
            entry["error"] = response.error
        self._entries.append(entry)
        return entry

    def since(self, timestamp: float | None) -> list[dict[str, Any]]:
        """Entries received strictly after `timestamp` (all of them when None).

        Compared in whole microseconds: an ISO time carries no more, and float noise from
        parsing it must not let an entry match its own time.
        """
        if timestamp is None:
            return list(self._entries)
        after = _microseconds(timestamp)
        return [entry for entry in self._entries if _microseconds(entry["ts"]) > after]


def _microseconds(timestamp: float) -> int:
    return round(timestamp * 1_000_000)
