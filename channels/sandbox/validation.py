"""Checks on values that arrive in JSON bodies; every failure is a 400 naming the field."""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from .messages import HttpError

# A price as channels print it: digits with an optional fraction, no sign, exponent or NaN.
DECIMAL_TEXT = re.compile(r"\d+(\.\d+)?")


def invalid(field: str, expectation: str, value: Any) -> HttpError:
    return HttpError(400, f"{field} must be {expectation}, got {value!r}")


def reject_unknown_fields(body: Mapping[str, Any], allowed: Iterable[str], where: str = "body") -> None:
    allowed = sorted(allowed)
    for name in body:
        if name not in allowed:
            raise HttpError(400, f"unknown field {name!r} in {where} (expected: {', '.join(allowed)})")


def integer(value: Any, field: str, *, minimum: int | None = None) -> int:
    # bool is an int in Python but never what a sender meant.
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(field, "an integer", value)
    if minimum is not None and value < minimum:
        raise invalid(field, f"an integer >= {minimum}", value)
    return value


def number(value: Any, field: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise invalid(field, "a number", value)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
        raise invalid(field, f"a number {bounds}", value)
    return float(value)


def text(value: Any, field: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(field, "a string" + (" or null" if nullable else ""), value)
    return value


def decimal_text(value: Any, field: str, *, nullable: bool = False, allow_number: bool = False) -> str | None:
    """A price as a decimal string ("12.50"). `allow_number` also takes 12.5 (a person typing)."""
    if value is None and nullable:
        return None
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        value = str(Decimal(str(value)))
    if not isinstance(value, str) or not DECIMAL_TEXT.fullmatch(value):
        expectation = 'a decimal string like "12.50"' + (" or null" if nullable else "")
        raise invalid(field, expectation, value)
    return value
