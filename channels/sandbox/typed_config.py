"""Typed, kind-specific settings for `POST /_sandbox/{kind}/{store}/config`.

The base `Store.set_config` takes text only (URLs and secrets). Kinds that also need numbers,
choices or lists (rate limits, token lifetimes, store codes) mix in `TypedConfig` and name a
parser per field; any field without a parser is still checked as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from .messages import HttpError
from .validation import integer, number, reject_unknown_fields, text

ConfigParser = Callable[[Any, str], Any]


def positive_number(value: Any, field: str) -> float:
    parsed = number(value, field)
    if parsed <= 0:
        raise HttpError(400, f"{field} must be a number > 0, got {value!r}")
    return parsed


def non_negative_number(value: Any, field: str) -> float:
    return number(value, field)


def positive_integer(value: Any, field: str) -> int:
    return integer(value, field, minimum=1)


def choice(*allowed: str) -> ConfigParser:
    def parse(value: Any, field: str) -> str:
        if value not in allowed:
            raise HttpError(400, f"{field} must be one of {', '.join(allowed)}, got {value!r}")
        return str(value)

    return parse


def text_list(value: Any, field: str) -> list[str]:
    """A list of non-empty strings, given as a JSON list or a comma-separated string."""
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) and not isinstance(value, str):
        raise HttpError(400, f"{field} must be a list of strings or a comma-separated string, got {value!r}")
    parsed = [item.strip() if isinstance(item, str) else item for item in items]
    if not all(isinstance(item, str) and item for item in parsed):
        raise HttpError(400, f"{field} must hold non-empty strings, got {value!r}")
    return parsed


class TypedConfig:
    """Mixin for a `Store` subclass: `config_parsers` maps a config field to its check."""

    config_parsers: ClassVar[dict[str, ConfigParser]] = {}

    def set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Merge the given settings (null removes one) and answer the whole config."""
        reject_unknown_fields(body, self.config_fields)  # type: ignore[attr-defined]
        parsed: dict[str, Any] = {}
        for name, value in body.items():
            if value is None:
                parsed[name] = None
                continue
            parse = self.config_parsers.get(name)
            parsed[name] = parse(value, name) if parse is not None else text(value, name)
        with self.lock:  # type: ignore[attr-defined]
            for name, value in parsed.items():
                if value is None:
                    self.config.pop(name, None)  # type: ignore[attr-defined]
                else:
                    self.config[name] = value  # type: ignore[attr-defined]
        return self.config_view()  # type: ignore[attr-defined,no-any-return]
