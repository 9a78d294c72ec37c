"""What shows that a fault took effect. Each fault returns an `Effect`: the claims it checked
while it ran, and checks that can only be made once the stack has settled (they may wait,
with a timeout); the scenario adds the error statuses the stores answered, and the test
asserts every claim. The readers below are what the claims are made of: leases and who holds
them, beat's heartbeat, what the broker holds, PostgreSQL's sessions, the processes' logs."""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.support.sandbox import wait_until


@dataclass(frozen=True)
class Claim:
    """One thing a fault says it did, whether that held, and what was seen."""

    says: str
    held: bool
    evidence: str

    def line(self) -> str:
        return f"{'held' if self.held else 'DID NOT HOLD'}: {self.says} ({self.evidence})"


@dataclass
class Effect:
    """What a fault returns: the error statuses it makes a store answer (the scenario checks
    them against the stores' request logs), its claims, and its checks for afterwards."""

    statuses: frozenset[int] = frozenset()
    claims: list[Claim] = field(default_factory=list)
    afterwards: list[Callable[[], Claim]] = field(default_factory=list)


# -- leases ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lease:
    """A claimed mark and the process whose flush claimed it (from `claimed_by`, which is
    host:pid:nonce)."""

    mark_id: int
    channel_id: int
    variant_id: int
    aspect: str
    pid: int


def leases_held(pids: Iterable[int], *, running_only: bool = True) -> list[Lease]:
    """Marks leased to one of `pids`; `running_only`: whose lease has not run out."""
    from django.utils import timezone

    from channels.models import SyncMark

    marks = SyncMark.objects.filter(claimed_by__isnull=False, lease_until__isnull=False)
    if running_only:
        marks = marks.filter(lease_until__gt=timezone.now())
    return _leases_of(marks, set(pids))


def leases_orphaned(pids: Iterable[int]) -> list[Lease]:
    """The leases killed processes `pids` left behind, once their last transaction has ended.
    A process killed just after it sent COMMIT has its batch committed by PostgreSQL all the
    same (its marks settled, its attempts logged): read without a lock, those marks look
    orphaned for a moment and are then never sent again. Each batch locks its marks first,
    so taking the same row locks (in the same order, by id) waits for that commit or its
    rollback, and what is still leased to `pids` afterwards is really left to run out."""
    from django.db import transaction

    from channels.models import SyncMark

    wanted = set(pids)
    candidates = [lease.mark_id for lease in leases_held(wanted, running_only=False)]
    with transaction.atomic():
        marks = SyncMark.objects.select_for_update().filter(id__in=candidates, claimed_by__isnull=False).order_by("id")
        return _leases_of(marks, wanted)


def _leases_of(marks, pids: set[int]) -> list[Lease]:
    found = []
    for mark_id, channel_id, variant_id, aspect, claimed_by in marks.values_list(
        "id", "channel_id", "variant_id", "aspect", "claimed_by"
    ):
        pid = _claimer_pid(claimed_by)
        if pid in pids:
            found.append(Lease(mark_id, channel_id, variant_id, aspect, pid))
    return found


def _claimer_pid(claimed_by: str) -> int | None:
    try:
        return int(claimed_by.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return None


def processes_gone(pids: Iterable[int]) -> bool:
    """Every one has exited (a zombie waiting for its parent counts as exited)."""
    import psutil

    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def redelivered_by_others(orphaned: list[tuple[Lease, datetime]], *, timeout: float = 60) -> Claim:
    """Every mark a killed process held (killed at the time given) was sent again after the
    kill. The killed process could write nothing after it, so each such attempt is another
    owner's, who claimed the mark once the lease ran out."""
    from channels.models import SyncAttempt

    def missing() -> list[Lease]:
        return [lease for lease, killed_at in orphaned if not SyncAttempt.objects.filter(
            channel_id=lease.channel_id, variant_id=lease.variant_id, event_type=lease.aspect,
            started_at__gt=killed_at).exists()]

    says = "the leases the killed processes held ran out and other processes delivered those marks"
    try:
        wait_until(lambda: orphaned and not missing(), timeout=timeout, interval=0.5)
    except AssertionError:
        left = missing()
        return Claim(says, False, f"{len(orphaned) - len(left)} of {len(orphaned)} sent again; never: "
                                  f"{[_mark_story(lease) for lease in left[:5]]}")
    return Claim(says, True, f"all {len(orphaned)} orphaned marks were sent again after their kill")


def _mark_story(lease: Lease) -> str:
    """What became of a mark that was never sent again: its state now and its last attempts."""
    from channels.models import SyncAttempt, SyncMark

    mark = SyncMark.objects.filter(id=lease.mark_id).values("claimed_by", "lease_until", "version", "attempts").first()
    attempts = list(SyncAttempt.objects.filter(
        channel_id=lease.channel_id, variant_id=lease.variant_id, event_type=lease.aspect,
    ).order_by("-started_at").values_list("started_at", "status", "version")[:3])
    return f"mark {lease.mark_id} {lease.aspect} of pid {lease.pid}: now {mark}; last attempts {attempts}"


# -- beat -----------------------------------------------------------------------------------

def beat_task_names() -> set[str]:
    """The tasks only beat sends (its schedule's)."""
    from django.conf import settings

    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


_RECEIVED = re.compile(r"Task (\S+)\[[0-9a-f-]+\] received")


def tasks_received_since(offsets: dict[Path, int], names: set[str]) -> Counter:
    """How many of the tasks named `names` the worker took from the broker since `offsets`
    (its log's "Task <name>[<id>] received" lines)."""
    received: Counter = Counter()
    for path, offset in offsets.items():
        with open(path, "rb") as log:
            log.seek(offset)
            for match in _RECEIVED.finditer(log.read().decode(errors="replace")):
                if match.group(1) in names:
                    received[match.group(1)] += 1
    return received


# -- the broker (Redis) ---------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerSnapshot:
    run_id: str
    tasks: dict[str, str]  # task id -> task name, queued or delivered but not acknowledged
    keys: int
    sentinel_present: bool


SENTINEL = "syncsvc:chaos:sentinel"


def broker_snapshot(client, *, queues: Iterable[str]) -> BrokerSnapshot:
    """What Redis holds now: its run id (new at every start), the tasks in the queues and in
    kombu's `unacked` hash (acks_late: a running task stays there), how many keys, and whether
    our sentinel key is there."""
    tasks: dict[str, str] = {}
    for queue in queues:
        for raw in client.lrange(queue, 0, -1):
            _note_task(tasks, raw)
    for raw in client.hvals("unacked"):
        try:
            _note_task(tasks, json.dumps(json.loads(raw)[0]))
        except (ValueError, IndexError, TypeError):
            continue
    return BrokerSnapshot(run_id=client.info("server")["run_id"], tasks=tasks, keys=client.dbsize(),
                          sentinel_present=bool(client.exists(SENTINEL)))


def _note_task(tasks: dict[str, str], raw) -> None:
    try:
        headers = json.loads(raw)["headers"]
        tasks[headers["id"]] = headers["task"]
    except (ValueError, KeyError, TypeError):
        pass


def task_names(tasks: dict[str, str]) -> str:
    return ", ".join(f"{name} x {n}" for name, n in Counter(tasks.values()).most_common(4))


# -- PostgreSQL -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PostgresSnapshot:
    started_at: datetime
    backends: dict[int, bool]  # pid -> in a transaction, other sessions on the test database


def postgres_snapshot() -> PostgresSnapshot:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        started_at = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pid, xact_start IS NOT NULL FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = dict(cursor.fetchall())
    return PostgresSnapshot(started_at=started_at, backends=backends)


def open_transaction():
    """A session of our own, left inside a transaction that has written (a temporary table),
    to see the restart cut it."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    session = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                              user=settings["USER"] or None, dbname=settings["NAME"], connect_timeout=5)
    session.execute("CREATE TEMPORARY TABLE chaos_in_flight (n int)")
    session.execute("INSERT INTO chaos_in_flight VALUES (1)")
    return session


def transaction_cut(session) -> str | None:
    """How the restart ended `session`'s transaction (its error), or None if it survived."""
    import psycopg

    try:
        session.execute("INSERT INTO chaos_in_flight VALUES (2)")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        session.close()
    return None


# -- the processes' logs --------------------------------------------------------------------

# What psycopg and Django say when a session's connection goes away under it.
DROPPED_CONNECTION = (
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "consuming input failed",
    "the connection is closed",
    "connection already closed",
)


def log_offsets(processes, names: Iterable[str]) -> dict[Path, int]:
    offsets = {}
    for name in names:
        child = processes.children.get(name)
        if child is not None:
            offsets[child.log_path] = child.log_path.stat().st_size if child.log_path.exists() else 0
    return offsets


def log_lines_since(offsets: dict[Path, int], phrases: Iterable[str]) -> list[str]:
    """Lines added to the logs since `offsets` that contain one of `phrases`."""
    phrases = tuple(phrases)
    found = []
    for path, offset in offsets.items():
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            continue
        found += [f"{path.stem}: {line.strip()[:160]}" for line in text.splitlines() if any(p in line for p in phrases)]
    return found
