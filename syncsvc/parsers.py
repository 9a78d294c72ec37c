"""The API's JSON parser: DRF's, refusing what PostgreSQL would refuse later as a 500.

A NUL character (U+0000) fits no text column and no jsonb value; JSON nested deeper than
Python's parser recurses raises RecursionError, not ValueError. Both are 400s here, before a
view runs, a NUL one naming where it is (`attributes.colour`, `[3].sku`)."""
from __future__ import annotations

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

NUL = "\x00"
NUL_MESSAGE = "Null characters are not allowed."


def nul_paths(value, path: str = "") -> list[str]:
    """Where NUL characters are in a parsed JSON value, as field paths."""
    if isinstance(value, str):
        return [path or "non_field_errors"] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found += [where.replace(NUL, "\\u0000")] if NUL in str(key) else nul_paths(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += nul_paths(item, f"{path}[{index}]")
    return found


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        paths = nul_paths(data)
        if paths:
            raise ValidationError({path: [NUL_MESSAGE] for path in paths})
        return data
