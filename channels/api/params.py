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


def choice_param(request, name: str, queryset, *, field: str, choices: list[str]):
    """`queryset` narrowed to `field` = `?name=` when given; a 400 listing `choices` otherwise."""
    wanted = request.query_params.get(name)
    if not wanted:
        return queryset
    if wanted not in choices:
        raise ValidationError({name: [f"one of {', '.join(choices)}"]})
    return queryset.filter(**{field: wanted})


def offset_page(request, queryset, *, default: int, maximum: int) -> tuple[list, int, bool]:
    """The rows of `?offset=&limit=` (limit `default` unless given, at most `maximum`): the
    rows, the offset, and whether more follow (one row more is read to tell)."""
    limit = int_param(request, "limit", default, 1, maximum)
    offset = int_param(request, "offset", 0, 0, None)
    rows = list(queryset[offset:offset + limit + 1])
    return rows[:limit], offset, len(rows) > limit
