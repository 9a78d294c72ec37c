"""Validation of `POST /prices/bulk/` rows, as a plain loop.

The same rules as `PriceRowInput` (which documents the body in the OpenAPI schema), but ten
thousand DRF serializer instances cost a quarter of a second: this costs a few milliseconds.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..errors import BulkRowsError
from ..services import PriceRow

MAX_PRICE = Decimal("9999999999.99")  # max_digits 12, decimal places 2


def _price(value) -> tuple[Decimal | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, "A valid number is required."
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None, "A valid number is required."
    if not price.is_finite():
        return None, "A valid number is required."
    if price < 0:
        return None, "Ensure this value is greater than or equal to 0."
    if price > MAX_PRICE:  # first: quantizing 1e400 raises InvalidOperation
        return None, "Ensure that there are no more than 12 digits in total."
    if price != price.quantize(Decimal("0.01")):
        return None, "Ensure that there are no more than 2 decimal places."
    return price.quantize(Decimal("0.01")), None


def parse_price_rows(data: list) -> list[PriceRow]:
    """Rows in order, or BulkRowsError naming every bad row and field."""
    rows, errors = [], {}
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            errors[index] = {"non_field_errors": "Expected an object {sku, price, changed_at?}."}
            continue
        problems = {}
        sku = row.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            problems["sku"] = "This field is required." if sku is None else "A non-empty string is required."
        elif len(sku) > 100:
            problems["sku"] = "Ensure this field has no more than 100 characters."
        price, message = _price(row.get("price")) if "price" in row else (None, "This field is required.")
        if message:
            problems["price"] = message
        changed_at = row.get("changed_at")
        if changed_at is not None:
            changed_at, problem = _changed_at(changed_at)
            if problem:
                problems["changed_at"] = problem
        urgent = row.get("urgent", False)
        if not isinstance(urgent, bool):
            problems["urgent"] = "Must be a JSON boolean (true or false)."
        if problems:
            errors[index] = problems
        else:
            rows.append(PriceRow(sku=sku, price=price, changed_at=changed_at, urgent=urgent))
    if errors:
        raise BulkRowsError(errors)
    return rows


def _changed_at(value) -> tuple[datetime | None, str]:
    """ISO 8601 as UTC, or why not (well-formed but impossible dates such as month 13, and
    offsets PostgreSQL refuses, are 400s, not 500s)."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        return None, "Datetime has wrong format. Use ISO 8601."
    try:
        aware = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
        return aware.astimezone(UTC), ""
    except (OverflowError, ValueError):
        return None, "Datetime is out of range."
