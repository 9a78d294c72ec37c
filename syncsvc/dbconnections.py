"""Surviving a database that drops its connections (a restart, a failover, an idle timeout).

- In Celery workers, connections are looked after around every task as Django looks after
  them around every request (`close_old_connections`): one that failed and no longer answers
  is dropped, one older than CONN_MAX_AGE is closed, and with CONN_HEALTH_CHECKS the task's
  first query checks that it is alive. Celery's Django fixup only recycles connections every
  CELERY_DB_REUSE_MAX tasks, so without this a process whose connection the database dropped
  fails every task with "the connection is closed" until then.
- `Reconnecting` runs an idempotent statement outside a transaction again, over a fresh
  connection, while the database comes back, within a deadline: for a webhook that a channel
  never resends (WooCommerce), a short restart must not turn into a lost sale.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, close_old_connections, connection

log = logging.getLogger(__name__)
T = TypeVar("T")


def _around_task(sender=None, **_kwargs) -> None:
    # An eager task runs inside its caller's transaction (tests): its connection is the caller's.
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


def celery_signals_connect() -> None:
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_around_task, weak=False, dispatch_uid="syncsvc.dbconnections.task_prerun")
    task_postrun.connect(_around_task, weak=False, dispatch_uid="syncsvc.dbconnections.task_postrun")


class Reconnecting:
    """Runs idempotent database work again on an OperationalError (the connection dropped,
    the server refuses connections while it restarts) until `within_s` from creation has
    passed; then the error is raised. Inside a transaction the work runs once: a broken
    transaction cannot be resumed on a new connection."""

    def __init__(self, *, within_s: float, interval_s: float = 0.25) -> None:
        self.deadline = time.monotonic() + within_s
        self.interval_s = interval_s

    def __call__(self, work: Callable[[], T]) -> T:
        while True:
            try:
                return work()
            except OperationalError as exc:
                if connection.in_atomic_block or time.monotonic() + self.interval_s > self.deadline:
                    raise
                log.warning("database unavailable (%s); reconnecting", str(exc).strip().splitlines()[0][:200])
                connection.close()
                time.sleep(self.interval_s)  # the database is restarting: nothing to poll but itself
