"""What every log line carries while it is known: the change ids on their way, the channel,
the SKU, the Celery task id.

Code that knows one of them opens `log_context(change_ids=..., channel=...)` around its work;
`ContextFilter`, on the handlers, copies the fields onto each record, so the text and the JSON
formatters show them on every line, including lines of libraries and of Celery itself.
Context variables, not thread locals: gunicorn threads and Celery tasks each see their own.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType

FIELDS = ("change_id", "change_count", "channel", "sku", "task_id")
# A bulk import records thousands of changes at once: a line carries the first ones and
# the count, not a 10,000-long list.
MAX_CHANGE_IDS = 50

_EMPTY: MappingProxyType = MappingProxyType({})
_fields: ContextVar[MappingProxyType] = ContextVar("syncsvc_log_fields", default=_EMPTY)


def _change_fields(change_ids: Iterable[int]) -> dict[str, object]:
    ids = sorted(set(change_ids))
    if not ids:
        return {}
    fields: dict[str, object] = {"change_id": ids[:MAX_CHANGE_IDS]}
    if len(ids) > MAX_CHANGE_IDS:
        fields["change_count"] = len(ids)
    return fields


def _merged(change_ids: Iterable[int] | None, fields: dict[str, object]) -> MappingProxyType:
    merged = dict(_fields.get())
    if change_ids is not None:
        merged.pop("change_count", None)
        merged.pop("change_id", None)
        merged.update(_change_fields(change_ids))
    merged.update({name: value for name, value in fields.items() if value is not None})
    return MappingProxyType(merged)


@contextmanager
def log_context(*, change_ids: Iterable[int] | None = None, **fields: object) -> Iterator[None]:
    """Add fields (`channel=`, `sku=`, `task_id=`, and the change ids) to every log record
    made inside the block; the outer values come back after it."""
    token = _fields.set(_merged(change_ids, fields))
    try:
        yield
    finally:
        _fields.reset(token)


def log_context_enter(*, change_ids: Iterable[int] | None = None, **fields: object) -> Token:
    """`log_context` for code that opens and closes in two callbacks (Celery's task_prerun
    and task_postrun); pass the token to `log_context_exit`."""
    return _fields.set(_merged(change_ids, fields))


def log_context_exit(token: Token) -> None:
    try:
        _fields.reset(token)
    except ValueError:  # a token of another context (a callback run elsewhere): start clean
        _fields.set(_EMPTY)


def log_fields() -> dict[str, object]:
    return dict(_fields.get())


class ContextFilter(logging.Filter):
    """Copies the context's fields onto the record (never over an `extra=` of the call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The plain format, with the known context fields appended: `... [change_id=12,13 channel=shop]`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        known = []
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            known.append(f"{name}={value}")
        return f"{line} [{' '.join(known)}]" if known else line


class LogContextMiddleware:
    """Each request starts with no fields: a gunicorn thread serves many requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _fields.set(_EMPTY)
        try:
            return self.get_response(request)
        finally:
            log_context_exit(token)


# --- Celery: each task's lines carry its id --------------------------------------------------

_task_tokens: dict[str, Token] = {}


def _task_started(task_id: str | None = None, **kwargs) -> None:
    if task_id:  # a task starts clean: nothing of the previous one in this process
        _task_tokens[task_id] = _fields.set(MappingProxyType({"task_id": task_id}))


def _task_finished(task_id: str | None = None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        log_context_exit(token)


def celery_signals_connect() -> None:
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False, dispatch_uid="syncsvc.logcontext.task_started")
    task_postrun.connect(_task_finished, weak=False, dispatch_uid="syncsvc.logcontext.task_finished")
