"""Wall-clock helpers: ISO 8601 in UTC out, unix seconds or ISO 8601 in."""
from __future__ import annotations

import math
from datetime import datetime, timezone


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def parse_instant(text: str) -> float:
    """Unix seconds from `"1700000000.5"` or an ISO 8601 time (naive means UTC).

    Raises ValueError when it is neither.
    """
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a finite time: {text!r}")
        return value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # An unencoded "+00:00" in a query string arrives as " 00:00".
        moment = datetime.fromisoformat(text.replace(" ", "+"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
