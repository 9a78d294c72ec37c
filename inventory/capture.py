"""A context flag: inside a service call, ORM saves are not captured again by signals."""
from __future__ import annotations

import contextlib
import contextvars

_suppressed = contextvars.ContextVar("inventory_capture_suppressed", default=False)


def is_suppressed() -> bool:
    return _suppressed.get()


@contextlib.contextmanager
def suppressed():
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)
