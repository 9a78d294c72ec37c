"""Connections the database dropped (as a restart drops every session): a worker's next task
runs on a new one, and a webhook's idempotent store is run again over a new one."""
from __future__ import annotations

import psycopg
import pytest
from celery.signals import task_prerun
from django.db import OperationalError, connection, transaction

from channels.tasks import sweep
from syncsvc.dbconnections import Reconnecting

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="drops a PostgreSQL session")


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    """End that session from another one, as the server does to every session when it restarts."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"] or None, dbname=settings["NAME"], autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def _task_starts() -> None:
    task_prerun.send(sender=sweep, task_id="t-1", task=sweep, args=(), kwargs={})


@pytest.mark.django_db(transaction=True)
def test_a_task_after_its_connection_failed_runs_on_a_new_one():
    # given: a worker process whose connection the server ended, and a task that failed on it
    old = _backend_pid()
    _terminate(old)
    with pytest.raises(OperationalError):
        _backend_pid()

    # when: the next task starts
    _task_starts()

    # then: it works, on another session
    assert _backend_pid() != old


@pytest.mark.django_db(transaction=True)
def test_a_task_after_its_idle_connection_was_dropped_runs_on_a_new_one():
    # given: a connection the server ended while the process was idle (no task saw it)
    old = _backend_pid()
    _terminate(old)

    # when: the next task starts
    _task_starts()

    # then: its first query checks the connection and reconnects, without an error
    assert _backend_pid() != old


@pytest.mark.django_db(transaction=True)
def test_reconnecting_runs_the_work_again_on_a_new_connection():
    # given
    old = _backend_pid()
    _terminate(old)
    runs = []

    def work() -> int:
        runs.append(1)
        return _backend_pid()

    # when
    new = Reconnecting(within_s=5, interval_s=0.01)(work)

    # then
    assert new != old and len(runs) == 2


@pytest.mark.django_db(transaction=True)
def test_reconnecting_inside_a_transaction_runs_the_work_once():
    old = _backend_pid()
    runs = []

    def work() -> int:
        runs.append(1)
        return _backend_pid()

    with pytest.raises(OperationalError):
        with transaction.atomic():
            _backend_pid()
            _terminate(old)
            Reconnecting(within_s=5, interval_s=0.01)(work)
    assert len(runs) == 1
    connection.close()
