"""The published event schemas: `schemas/<type>/v<N>.json`, one JSON Schema (draft 2020-12)
per event type and version, served at `/api/v1/event-schemas/`.

The files are the contract: they are what subscribers read, and a unit test checks every
builder in `events.py` against them. A version is never edited once released (a new field or
a changed shape is a new version); a version marked `"deprecated": true` is still built and
served until it is removed, as the README's deprecation policy says.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# The event type each aspect of an item is announced as, and each alert notification as
# (the names are part of the contract).
ASPECT_EVENT_TYPES = {"price": "price.updated", "inventory": "inventory.updated", "content": "product.updated"}
ALERT_EVENT_TYPES = {"opened": "alert.opened", "cleared": "alert.cleared"}

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.json")


class UnknownSchema(LookupError):
    """No published schema for this event type or version."""


@dataclass(frozen=True)
class EventType:
    name: str
    versions: tuple[int, ...]  # ascending
    deprecated: tuple[int, ...]
    description: str

    @property
    def latest(self) -> int:
        return self.versions[-1]

    @property
    def first(self) -> int:
        return self.versions[0]


@cache
def _schemas() -> dict[str, dict[int, dict]]:
    # Read once per process on first use (no import-time I/O); the files ship with the package.
    found: dict[str, dict[int, dict]] = {}
    for directory in sorted(path for path in SCHEMAS_DIR.iterdir() if path.is_dir()):
        for file in directory.iterdir():
            match = _VERSION_FILE.fullmatch(file.name)
            if match:
                found.setdefault(directory.name, {})[int(match.group(1))] = json.loads(file.read_text())
    return found


def event_types() -> dict[str, EventType]:
    """Every published event type by name, with its versions."""
    types = {}
    for name, by_version in _schemas().items():
        versions = tuple(sorted(by_version))
        types[name] = EventType(
            name=name,
            versions=versions,
            deprecated=tuple(v for v in versions if by_version[v].get("deprecated")),
            description=by_version[versions[-1]].get("description", ""),
        )
    return types


def event_type(name: str) -> EventType:
    found = event_types().get(name)
    if found is None:
        raise UnknownSchema(f"no event type {name!r}; published: {', '.join(sorted(event_types()))}")
    return found


def event_schema(name: str, version: int) -> dict:
    """The JSON Schema of one event type at one version; UnknownSchema when not published."""
    known = event_type(name)
    if version not in known.versions:
        raise UnknownSchema(f"no version {version} of {name}; published: {', '.join(map(str, known.versions))}")
    return _schemas()[name][version]
