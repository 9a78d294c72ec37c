"""Which schema version a subscriber gets: its pins in `Channel.settings`.

    settings.schema_versions = {"price.updated": 1, "inventory.updated": 1, ...}

Rules (the README's "Event contracts"):
- A webhook channel created through the API or the admin gets every item event type pinned at
  the version that is latest then, recorded in its settings; so when a later release adds
  `price.updated` v3, existing subscribers keep what they had until they change their pin.
- A type with no recorded pin (channels created before pins were recorded, alert events, a
  type added after the channel was made) is built at the type's first version.
- Pins survive a settings PATCH that does not mention them; to move, set the new version.
- A pin names a published type and version; anything else is refused (400 naming
  `settings.schema_versions.<type>`), and so is a single `settings.schema_version`.
- A pin on a version removed after its deprecation window is served the next published one.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .catalog import ASPECT_EVENT_TYPES, UnknownSchema, event_type, event_types

PINS = "schema_versions"
DEFAULT_CURRENCY = "USD"
_CURRENCY = re.compile(r"[A-Z]{3}")


def pinned_version(settings: Mapping, name: str) -> int:
    """The version of event type `name` this subscriber gets."""
    known = event_type(name)
    pins = settings.get(PINS)
    pin = pins.get(name) if isinstance(pins, Mapping) else None
    if not isinstance(pin, int) or isinstance(pin, bool):
        return known.first
    if pin in known.versions:
        return pin
    # A retired version (removed after its deprecation window): the next one still published.
    return min((v for v in known.versions if v > pin), default=known.latest)


def channel_currency(settings: Mapping) -> str:
    """The ISO 4217 code money is announced in (`settings.currency`, default USD)."""
    return settings.get("currency") or DEFAULT_CURRENCY


def pins_errors(settings: Mapping) -> dict[str, str]:
    """What is wrong with a channel's pins (and the currency v2 money carries), by field path."""
    errors: dict[str, str] = {}
    if "schema_version" in settings:
        # Versions move per type (price.updated v2 says nothing about inventory.updated): a
        # single number would be silently meaningless, so it is refused.
        errors["settings.schema_version"] = 'pins are per event type: use settings.schema_versions, e.g. {"price.updated": 1}'
    pins = settings.get(PINS)
    if pins is not None:
        if not isinstance(pins, Mapping):
            errors[f"settings.{PINS}"] = 'must be an object of event type to version, e.g. {"price.updated": 1}'
        else:
            for name, version in pins.items():
                field = f"settings.{PINS}.{name}"
                try:
                    known = event_type(name)
                except UnknownSchema:
                    errors[field] = f"unknown event type; published: {', '.join(sorted(event_types()))}"
                    continue
                if not isinstance(version, int) or isinstance(version, bool) or version not in known.versions:
                    errors[field] = f"unknown version {version!r}; published: {', '.join(map(str, known.versions))}"
    currency = settings.get("currency")
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        errors["settings.currency"] = 'must be an ISO 4217 code like "USD"'
    return errors


def pins_recorded(*, kind: str, settings: Mapping, previous: Mapping | None = None) -> dict:
    """The settings to store: pins carried over from `previous` (an update) unless given, and
    for a new webhook channel (`previous` None) every item event type pinned at its latest."""
    stored = dict(settings)
    pins = dict(stored.get(PINS) or {})
    if previous is not None:
        for name, version in (previous.get(PINS) or {}).items():
            pins.setdefault(name, version)
    elif kind == "webhook":
        for name in ASPECT_EVENT_TYPES.values():
            pins.setdefault(name, event_type(name).latest)
    if pins:
        stored[PINS] = pins
    return stored
