"""Instants as Amazon prints them: ISO 8601 UTC with milliseconds and a Z."""
from __future__ import annotations

from datetime import datetime, timezone


def amazon_time(timestamp: float) -> str:
    """`2021-02-03T18:59:30.194Z`, the form of SP-API dates and notification times."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
