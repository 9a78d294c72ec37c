"""Shared fixtures. Tests that cross processes use `live`: the real sandbox, a real Celery
worker and real beat, running against the test database and the test Redis."""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from syncsvc.processes import ProcessStack, database_url_for
from tests.support.redis_state import syncsvc_state_forget
from tests.support.sandbox import SandboxControl

# Shorter clocks so recovery paths finish within a test's patience; the same values go to the
# child processes through the environment.
TEST_CLOCKS = {
    "SYNCSVC_SWEEP_INTERVAL_S": "1",
    "SYNCSVC_LEASE_S": "6",
    "SYNCSVC_HTTP_TIMEOUT_S": "4",
    "SYNCSVC_RETRY_BASE_S": "0.2",
    "SYNCSVC_RETRY_CAP_S": "1.5",
    "SYNCSVC_WAKE_FLAG_TTL_S": "2",
    "SYNCSVC_INBOUND_SWEEP_INTERVAL_S": "1",
    "SYNCSVC_RESERVATION_SWEEP_INTERVAL_S": "1",
    "SYNCSVC_ORDERS_POLL_INTERVAL_S": "1",
    "SYNCSVC_HEARTBEAT_INTERVAL_S": "1",
    # a stopped second beat that led hands over within a tick, not the 20 s default
    "SYNCSVC_BEAT_LEADER_TTL_S": "4",
    "SYNCSVC_ALERTS_INTERVAL_S": "1",
    "SYNCSVC_CIRCUIT_PROBE_S": "2",
    "SYNCSVC_CIRCUIT_PROBE_CAP_S": "4",
    # Not a clock: the key alert notifications are signed with, for the workers too.
    "SYNCSVC_ALERT_WEBHOOK_SECRET": "test-alert-secret",
    "SYNCSVC_RESYNC_ADVANCE_INTERVAL_S": "1",
    "SYNCSVC_RESYNC_POLL_S": "0.5",
    "SYNCSVC_RESYNC_VERIFY_GRACE_S": "3",
    "SYNCSVC_RECONCILE_INTERVAL_S": "1",
    "SYNCSVC_CATALOG_REFRESH_LEASE_S": "3",
    "SYNCSVC_CATALOG_REFRESH_POLL_S": "0.3",
    "SYNCSVC_CATALOG_REFRESH_STEP_BUDGET_S": "2",
    "SYNCSVC_CATALOG_REFRESH_ADVANCE_INTERVAL_S": "1",
    "SYNCSVC_HELD_RELEASE_INTERVAL_S": "1",
}


@pytest.fixture(scope="session", autouse=True)
def _test_clocks():
    from django.conf import settings

    for name, value in TEST_CLOCKS.items():
        key = name.removeprefix("SYNCSVC_")
        settings.SYNCSVC[key] = type(settings.SYNCSVC[key])(value)


@pytest.fixture(scope="session", autouse=True)
def _no_state_from_an_earlier_run():
    """The test database is new each run, so its channel ids start again at 1, while the test
    Redis keeps what an earlier run left under those ids (a rate-limit bucket, a cache): a
    channel would inherit an earlier test's drained bucket. Start the run without it."""
    from redis.exceptions import RedisError

    try:
        syncsvc_state_forget()
    except RedisError:  # no Redis: the tests that need one say so
        pass


@pytest.fixture(scope="session", autouse=True)
def _flush_takes_its_locks_first():
    """Between `live` tests the test database is emptied (every table) while the
    real worker and beat may still be finishing the last test's work. The flush takes its
    table locks one by one, so it can deadlock with a worker's transaction. On PostgreSQL,
    take every lock first in one statement that gives up quickly (a lock timeout well under
    the deadlock timeout, so it never waits while holding what a worker needs), retry until
    it has them all, then flush inside that transaction."""
    from django.db import OperationalError, connection, transaction
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown_with_locks(self):
        if connection.vendor != "postgresql":
            return original(self)
        tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
        statement = "LOCK TABLE " + ", ".join(connection.ops.quote_name(t) for t in tables) + " IN ACCESS EXCLUSIVE MODE"
        deadline = time.monotonic() + 60
        while True:
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '200ms'")
                        cursor.execute(statement)
                    return original(self)
            except OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    TransactionTestCase._fixture_teardown = teardown_with_locks
    sql_flush = type(connection.ops).sql_flush
    if connection.vendor == "postgresql":
        # Rows, not files: a test leaves a few rows per table, and TRUNCATE gives each of the
        # ~60 tables and their indexes new files (about 140 ms a flush here, against 5 ms to
        # DELETE them). The foreign keys Django makes are deferred, so the order is free.
        def delete_rows(self, style, tables, *, reset_sequences=False, allow_cascade=False):
            if reset_sequences:
                return sql_flush(self, style, tables, reset_sequences=True, allow_cascade=allow_cascade)
            return [f"DELETE FROM {self.quote_name(table)};" for table in tables]

        type(connection.ops).sql_flush = delete_rows
    yield
    type(connection.ops).sql_flush = sql_flush
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite: a fresh test database file per session, shared with the child processes (a
    file left by an earlier run, with its -wal and -shm, would not be reusable)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@dataclass
class Stack:
    processes: ProcessStack
    sandbox_url: str
    sandbox: SandboxControl


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.db import connection

    env = {**os.environ, **TEST_CLOCKS, "DATABASE_URL": database_url_for(connection.settings_dict)}
    _purge_queues()
    processes = ProcessStack(env=env, log_dir=tmp_path_factory.mktemp("stack"))
    try:
        url = processes.start_sandbox()
        processes.start_worker()
        processes.start_beat()
        yield Stack(processes, url, SandboxControl(url))
    finally:
        processes.stop()


def _purge_queues() -> None:
    """Tasks an earlier, interrupted run left in the test broker would run against this run's
    database (and queue ahead of its own): start with empty queues."""
    from syncsvc.celery import app
    from syncsvc.processes import QUEUES

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in QUEUES.split(","):
            try:
                channel.queue_purge(queue)
            except Exception:  # a broker that never declared the queue has nothing in it
                pass


@pytest.fixture(scope="session")
def web_url(stack) -> str:
    """A syncsvc web server (gunicorn, as deployed) on the test database: where the sandbox
    stores post their webhooks. Started on first use."""
    return stack.processes.start_web()


@pytest.fixture
def live(stack, transactional_db):
    """The running stack, with committed data visible to its processes."""
    syncsvc_state_forget()
    yield stack
    # Quiet the real worker before the database is emptied: no more flushes or inbound work.
    from channels.models import Channel

    Channel.objects.update(enabled=False)


@pytest.fixture
def store_name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def api_client(role: str = "pim") -> APIClient:
    from syncsvc.permissions import api_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(f'{role}-{uuid.uuid4().hex[:6]}', role)}")
    return client


@pytest.fixture
def pim():
    return api_client("pim")


@pytest.fixture
def ops():
    return api_client("ops")
