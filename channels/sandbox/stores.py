"""Every live emulated store, by (kind, name), created on first use."""
from __future__ import annotations

import threading

from .registry import store_class
from .store import Store


class Stores:
    """The sandbox's in-memory set of stores; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], Store] = {}

    def get(self, kind: str, name: str) -> Store:
        """The store, created if new; raises registry.UnknownKind."""
        key = (kind, name)
        store = self._stores.get(key)
        if store is not None:
            return store
        cls = store_class(kind)  # imports the emulator outside our lock
        with self._lock:
            return self._stores.setdefault(key, cls(name))

    def drop(self, kind: str, name: str) -> None:
        store_class(kind)  # an unknown kind is still an error, even with nothing to drop
        with self._lock:
            self._stores.pop((kind, name), None)

    def clear(self) -> None:
        with self._lock:
            self._stores.clear()
