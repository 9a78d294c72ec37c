"""WordPress REST argument checks (`rest_validate_value_from_schema`), for query strings and
the body of a single-resource write.

WordPress checks every argument a route declares and reports all failures in one
`rest_invalid_param` error. Batch items skip this: `batch_items` calls `update_item` with a
bare request, so their values are coerced the way the product setters do (`coerce_*`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import WpError

INTEGER_TEXT = re.compile(r"-?\d+")
BOOLEAN_TEXT = {"true": True, "1": True, "false": False, "0": False, "": False}


class ParamErrors:
    """Collects failures so one request reports all of them, as WordPress does."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.details: dict[str, dict[str, Any]] = {}

    def add(self, name: str, code: str, message: str) -> None:
        self.messages.setdefault(name, message)
        self.details.setdefault(name, {"code": code, "message": message, "data": None})

    def raise_if_any(self) -> None:
        if self.messages:
            raise WpError(
                400,
                "rest_invalid_param",
                f"Invalid parameter(s): {', '.join(self.messages)}",
                data={"params": self.messages, "details": self.details},
            )


def integer_value(
    errors: ParamErrors, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """An integer, from JSON or from query text ("5"), within the bounds; None after an error."""
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and INTEGER_TEXT.fullmatch(value.strip()))
    ):
        errors.add(name, "rest_invalid_type", f"{name} is not of type integer.")
        return None
    parsed = int(value)
    if minimum is not None and maximum is not None and not minimum <= parsed <= maximum:
        errors.add(
            name, "rest_out_of_bounds", f"{name} must be between {minimum} (inclusive) and {maximum} (inclusive)"
        )
        return None
    if minimum is not None and parsed < minimum:
        errors.add(name, "rest_out_of_bounds", f"{name} must be greater than or equal to {minimum}")
        return None
    return parsed


def boolean_value(errors: ParamErrors, name: str, value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXT:
        return BOOLEAN_TEXT[value.strip().lower()]
    errors.add(name, "rest_invalid_type", f"{name} is not of type boolean.")
    return None


def string_value(errors: ParamErrors, name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        errors.add(name, "rest_invalid_type", f"{name} is not of type string.")
        return None
    return value


def enum_value(errors: ParamErrors, name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value not in allowed:
        errors.add(name, "rest_not_in_enum", f"{name} is not one of {', '.join(allowed)}.")
        return None
    return str(value)


def integer_list(errors: ParamErrors, name: str, value: Any) -> list[int] | None:
    """`include=1,2,3` or a JSON list of integers."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        errors.add(name, "rest_invalid_type", f"{name} is not of type array.")
        return None
    parsed = [integer_value(errors, f"{name}[{index}]", item) for index, item in enumerate(items) if item != ""]
    return None if any(item is None for item in parsed) else [item for item in parsed if item is not None]


# --- batch items: no schema check, the product setters coerce ------------------------------


def coerce_decimal_text(value: Any) -> str:
    """`wc_format_decimal`: numbers become their decimal text; anything else its string."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (int, float)):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return ""
    return str(value).strip()


def coerce_boolean(value: Any) -> bool:
    """`wc_string_to_bool`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    return str(value).strip().lower() in ("yes", "true", "1")


def coerce_stock_amount(value: Any) -> int:
    """`wc_stock_amount`: a float cast to int; text that is no number counts as 0."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0
