"""Several real beat processes, one leader (syncsvc/beat.py), with the file scheduler the
test stack runs and the database one deployments run.

What counts is what reached the broker: the beats get a private Redis (broker and lock) that
no worker reads, so every message they sent stays in its `maintenance` list, oldest last,
each naming the process that sent it (`origin`, `gen<pid>@host`). A private Redis also lets a
test stop it without touching the machine's. The database is the test database."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from syncsvc.beat import beat_leader_pid
from syncsvc.processes import ROOT, ProcessStack, database_url_for, free_port
from tests.conftest import TEST_CLOCKS
from tests.support.sandbox import wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(300)

# Renewed every TTL/4 = 2 s: a tick starved for seconds on a loaded machine does not lose it,
# and a killed leader is replaced within seconds.
LEADER_TTL_S = 8
HEARTBEAT = "syncsvc.heartbeat"
# The entries due every few minutes (TEST_CLOCKS leaves them alone): sent at most once in a test.
SLOW_TASKS = ("channels.prune_settled", "channels.synclog_prune")

def _load_services():
    # scripts/ is not a package (its scripts run before the project is installed): load by path.
    spec = importlib.util.spec_from_file_location("syncsvc_scripts_services", ROOT / "scripts" / "services.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


services = _load_services()


@dataclass(frozen=True)
class Sent:
    task: str
    pid: int  # of the beat that sent it


class PrivateRedis:
    def __init__(self, data_dir: Path):
        self.port, self.data_dir, self.process = free_port(), data_dir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.process = services.start_embedded_redis(self.port, self.data_dir)

    def stop(self) -> None:
        if self.process is not None:
            services.stop_process(self.process)
            self.process = None

    def sent(self) -> list[Sent]:
        """Every message beat sent, oldest first (kombu LPUSHes)."""
        messages = [json.loads(raw) for raw in reversed(self.client.lrange("maintenance", 0, -1))]
        return [Sent(m["headers"]["task"], int(m["headers"]["origin"].split("@")[0].removeprefix("gen")))
                for m in messages]

    def leader_pid(self) -> int | None:
        return beat_leader_pid(self.client)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def beats(transactional_db, private_redis, tmp_path):
    from django.db import connection

    env = {
        **os.environ, **TEST_CLOCKS, "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url,
        "SYNCSVC_BEAT_LEADER_TTL_S": str(LEADER_TTL_S),
    }
    processes = ProcessStack(env=env, log_dir=tmp_path)
    yield processes
    processes.stop()


def _scheduler(kind: str) -> str:
    from django.conf import settings

    return settings.BEAT_FILE_SCHEDULER if kind == "file" else settings.CELERY_BEAT_SCHEDULER


def _start_two(beats: ProcessStack, kind: str):
    scheduler = _scheduler(kind)
    return beats.start_beat(name="beat-a", scheduler=scheduler), beats.start_beat(name="beat-b", scheduler=scheduler)


def _two_with_a_leader(beats: ProcessStack, private_redis):
    """Two file-scheduler beats, once one leads and has sent: (the leader, the follower)."""
    first, second = _start_two(beats, "file")
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT) >= 2, timeout=90,
               message=f"no heartbeat sent:\n{first.log_tail()}\n{second.log_tail()}")
    leader = first if private_redis.leader_pid() == first.pid else second
    return leader, (second if leader is first else first)


def _count(sent: list[Sent], task: str, pid: int | None = None) -> int:
    return sum(1 for s in sent if s.task == task and (pid is None or s.pid == pid))


def _log(child) -> str:
    return child.log_path.read_text(errors="replace")


def _schedule_an_hour_old(kind: str, tmp_path: Path) -> None:
    """Both beats' schedule state says every entry last ran an hour ago, as after beat was
    stopped a while: every entry is overdue for both."""
    from django.conf import settings

    from syncsvc.celery import app

    an_hour_ago = app.now() - timedelta(hours=1)
    if kind == "database":
        from django_celery_beat.models import PeriodicTask
        from django_celery_beat.schedulers import ModelEntry

        for name, fields in settings.CELERY_BEAT_SCHEDULE.items():
            ModelEntry.from_entry(name, app=app, **fields)
        PeriodicTask.objects.update(last_run_at=an_hour_ago)
        return
    from celery.beat import PersistentScheduler

    for name in ("beat-a", "beat-b"):
        scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / f"{name}-schedule"))
        for entry in scheduler.schedule.values():
            entry.last_run_at = an_hour_ago
        scheduler.close()


# The database scheduler is what a deployment runs; the file scheduler the test stacks use is
# led the same way (the mixin is shared) and shown by the clean-stop, pause and outage tests
# below and by the chaos beat fault, so it is not run twice here (make test's time budget).
@pytest.mark.parametrize("kind", ["database"])
def test_two_beats_started_at_once_send_each_entry_once(beats, private_redis, kind):
    # when: two beats start together and run for several heartbeat periods (1 s each)
    first, second = _start_two(beats, kind)
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT) >= 6, timeout=90,
               message=f"fewer than 6 heartbeats sent:\n{first.log_tail()}\n{second.log_tail()}")
    sent = private_redis.sent()

    # then: one of them sent everything, the other nothing, and the lock names the sender
    leader = private_redis.leader_pid()
    follower = second if leader == first.pid else first
    assert leader in (first.pid, second.pid)
    assert {s.pid for s in sent} == {leader}
    assert sum(1 for s in sent if s.pid == follower.pid) == 0
    assert "beat leadership: following" in _log(follower)
    assert "Scheduler: Sending due task" not in _log(follower)  # the line Celery logs per send
    assert first.alive() and second.alive()


# The database scheduler is what a deployment runs; the file scheduler the test stacks use is
# led the same way (the mixin is shared) and shown by the clean-stop, pause and outage tests
# below and by the chaos beat fault, so it is not run twice here (make test's time budget).
@pytest.mark.parametrize("kind", ["database"])
def test_a_killed_leader_is_replaced_and_its_sends_are_not_repeated(beats, private_redis, tmp_path, kind):
    # given: two beats whose schedules are an hour old; the leader has sent the overdue slow
    # entries and a few heartbeats
    _schedule_an_hour_old(kind, tmp_path)
    first, second = _start_two(beats, kind)

    def leader_caught_up() -> bool:
        sent = private_redis.sent()
        return all(_count(sent, task) for task in SLOW_TASKS) and _count(sent, HEARTBEAT) >= 3

    wait_until(leader_caught_up, timeout=90, message=f"no leader sent:\n{first.log_tail()}\n{second.log_tail()}")
    old = first if private_redis.leader_pid() == first.pid else second
    new = second if old is first else first

    # when: the leader is killed outright (its lock stays until its TTL runs out)
    killed_at = time.monotonic()
    os.killpg(old.pid, signal.SIGKILL)
    old.process.wait(10)
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid), timeout=LEADER_TTL_S * 10,
               message=f"the follower never took over:\n{new.log_tail()}")
    print(f"\n{kind} scheduler: the follower's first heartbeat {time.monotonic() - killed_at:.1f} s after the kill"
          f" (lock TTL {LEADER_TTL_S} s)")
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid) >= 3, timeout=60,
               message=f"the new leader stopped sending:\n{new.log_tail()}")
    sent = private_redis.sent()

    # then: the follower took over: nothing after the kill came from the dead leader, nothing
    # before it from the follower
    pids = [s.pid for s in sent]
    assert set(pids) == {old.pid, new.pid}
    assert pids == sorted(pids, key=lambda pid: pid == new.pid)
    assert private_redis.leader_pid() == new.pid
    assert "beat leadership: leading as" in _log(new)
    # and it took the dead leader's last sends: its own state said the slow entries were an
    # hour overdue, yet each went out once in all, from the first leader
    assert {task: (_count(sent, task), _count(sent, task, old.pid)) for task in SLOW_TASKS} == {
        task: (1, 1) for task in SLOW_TASKS
    }


def test_beats_outlive_a_redis_outage_and_one_leads_after_it(beats, private_redis):
    # given: two beats, one leading
    first, second = _start_two(beats, "file")
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT) >= 2, timeout=90,
               message=f"no heartbeat sent:\n{first.log_tail()}\n{second.log_tail()}")

    # when: Redis (lock and broker) goes away, then comes back empty
    private_redis.stop()
    wait_until(lambda: all("Redis unreachable" in _log(beat) for beat in (first, second)), timeout=60,
               message=f"a beat did not notice:\n{first.log_tail()}\n{second.log_tail()}")
    outage_alive = first.alive() and second.alive()
    private_redis.start()
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT) >= 3, timeout=90,
               message=f"no heartbeat after the outage:\n{first.log_tail()}\n{second.log_tail()}")

    # then: neither exited, and the sends after the outage come from one leader
    assert outage_alive and first.alive() and second.alive()
    sent = private_redis.sent()
    assert {s.pid for s in sent} == {private_redis.leader_pid()}
    assert all("Redis answers again" in _log(beat) for beat in (first, second))


def test_a_leader_stopped_cleanly_releases_its_lock_and_the_follower_leads(beats, private_redis):
    # given: two beats, one leading
    old, new = _two_with_a_leader(beats, private_redis)

    # when: the leader is stopped as a supervisor stops it (SIGTERM)
    stopped_at = time.monotonic()
    old.stop()
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid), timeout=60,
               message=f"the follower never took over:\n{new.log_tail()}")
    print(f"\nthe follower's first heartbeat {time.monotonic() - stopped_at:.1f} s after SIGTERM to the leader")
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid) >= 2, timeout=60,
               message=f"the new leader stopped sending:\n{new.log_tail()}")

    # then: it gave its lock up on the way out, and the follower's sends follow all of its own
    assert f"beat leadership: released by {socket.gethostname()}:{old.pid}:" in _log(old)
    pids = [s.pid for s in private_redis.sent()]
    assert pids == sorted(pids, key=lambda pid: pid == new.pid) and set(pids) == {old.pid, new.pid}
    assert private_redis.leader_pid() == new.pid


def test_a_paused_leader_that_lost_its_lock_sends_nothing_when_it_resumes(beats, private_redis):
    # given: two beats, one leading
    old, new = _two_with_a_leader(beats, private_redis)

    # when: the leader stalls past its lock's TTL (SIGSTOP), the follower takes over, and then
    # the old leader runs again
    os.kill(old.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid) >= 2, timeout=LEADER_TTL_S * 10,
                   message=f"the follower never took over:\n{new.log_tail()}")
    finally:
        os.kill(old.pid, signal.SIGCONT)
    # it notices at its next lock check ("lost to" the new leader) or at its next claim ("lost
    # before sending", then "following" the new leader)
    new_identity = f"{socket.gethostname()}:{new.pid}:"
    wait_until(lambda: new_identity in _log(old), timeout=60,
               message=f"the resumed leader never noticed:\n{old.log_tail()}")
    after = _count(private_redis.sent(), HEARTBEAT, new.pid)
    wait_until(lambda: _count(private_redis.sent(), HEARTBEAT, new.pid) >= after + 3, timeout=60,
               message=f"the new leader stopped sending:\n{new.log_tail()}")

    # then: once the new leader sent, the old one sent at most one message: the one it was
    # publishing when it was paused, claimed while it still led (a send for the due time it
    # claimed, late, not a second one: the new leader went by that claim); and it follows
    pids = [s.pid for s in private_redis.sent()]
    late = pids[pids.index(new.pid):].count(old.pid)
    assert late <= 1, f"the paused leader sent {late} messages after the new leader's first"
    assert private_redis.leader_pid() == new.pid and old.alive()


# Found by make test: Celery's SIGTERM handler closes the scheduler and raises SystemExit
# wherever the signal strikes. Inside a send, the broker client's clean-up turned it into an
# error Celery only logs: the beat released its lock, took it again and ran on. Inside a
# database query (the database scheduler), the close queried the same connection and waited
# on it for ever. Either way the supervisor's SIGKILL ended it, 10 s later.
@pytest.mark.parametrize("slow", ["broker", "database"])
def test_a_beat_told_to_stop_in_the_middle_of_its_work_stops_and_does_not_lead_again(
    private_redis, tmp_path, transactional_db, slow
):
    # given: a leading beat whose broker or database answers slowly (each chunk 0.3 s late,
    # each way), so it is nearly always waiting on one; its lock's Redis is reached directly
    from django.db import connection

    if slow == "database" and connection.vendor != "postgresql":
        pytest.skip("the database scheduler's queries are slowed through a proxy in front of PostgreSQL")
    database_url = database_url_for(connection.settings_dict)
    settings_dict = connection.settings_dict
    upstream = private_redis.url if slow == "broker" else \
        f"tcp://{settings_dict.get('HOST') or '127.0.0.1'}:{settings_dict.get('PORT') or 5432}"
    with TcpProxy(upstream) as proxy:
        env = {
            **os.environ, **TEST_CLOCKS, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url,
            "REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url,
            "SYNCSVC_BEAT_LEADER_TTL_S": str(LEADER_TTL_S),
        }
        if slow == "broker":
            env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
        else:
            env["DATABASE_URL"] = database_url.replace(
                f"@{settings_dict.get('HOST') or '127.0.0.1'}:{settings_dict.get('PORT') or 5432}/",
                f"@127.0.0.1:{proxy.port}/")
            assert env["DATABASE_URL"] != database_url, database_url
        processes = ProcessStack(env=env, log_dir=tmp_path)
        try:
            beat = processes.start_beat(name="beat-slow", scheduler=_scheduler("file" if slow == "broker" else "database"))
            sends = wait_until(lambda: _log(beat).count("Scheduler: Sending due task"), timeout=60,
                               message=f"the beat never sent:\n{beat.log_tail()}")
            proxy.delay(300)
            wait_until(lambda: _log(beat).count("Scheduler: Sending due task") >= sends + 2, timeout=30,
                       message=f"the beat never sent through the slow {slow}:\n{beat.log_tail()}")

            # when: it is told to stop (SIGTERM, as a supervisor does) in the middle of its work,
            # and the network is well again (what it saves on its way out goes at full speed)
            os.kill(beat.pid, signal.SIGTERM)
            proxy.heal()

            # then: it exits, having given its lock up, and never took it again
            exited = wait_until(lambda: beat.process.poll() is not None, timeout=8, interval=0.1,
                                message=f"the beat still runs 8 s after SIGTERM:\n{beat.log_tail()}")
        finally:
            processes.stop()
    assert exited
    log = _log(beat)
    released = log.index("beat leadership: released by")
    assert "beat leadership: leading" not in log[released:], log[released:][:3000]
    assert "beat raised exception" not in log, log[released:][:3000]
    assert private_redis.leader_pid() is None
