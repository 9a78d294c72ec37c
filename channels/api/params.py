"""Query parameters the operators' views read by hand (outside a filterset)."""
from __future__ import annotations

from rest_framework.exceptions import ValidationError


def int_param(request, name: str, default: int, low: int, high: int | None) -> int:
    """`?name=` as a whole number within [low, high]; a 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["must be a whole number"]}) from None
    if value < low or (high is not None and value > high):
        raise ValidationError({name: [f"must be between {low} and {high}" if high is not None else f"must be at least {low}"]})
    return value
