"""The faults, one function each: called under load, it returns when its fault is over and
the stack is whole again (a killed worker restarted, a store's faults cleared, a restarted
server answering), with an `Effect` saying what it saw of its own doing (evidence.py)."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.chaos import private_services
from tests.chaos.evidence import (
    DROPPED_CONNECTION,
    SENTINEL,
    Claim,
    Effect,
    Lease,
    beat_task_names,
    broker_snapshot,
    leases_held,
    leases_orphaned,
    log_lines_since,
    log_offsets,
    open_transaction,
    postgres_snapshot,
    processes_gone,
    redelivered_by_others,
    task_names,
    tasks_received_since,
    transaction_cut,
)
from tests.support.sandbox import wait_until


@dataclass(frozen=True)
class Durations:
    """How long each fault lasts: the full run's figures, or the short form's."""

    outage_s: float  # 503s
    storm_s: float  # 429s with Retry-After
    tokens_s: float  # expired tokens
    slow_s: float  # 2 s answers
    kills: int  # SIGKILLs that catch a flush in flight, per kill fault
    between_kills_s: float
    beat_stopped_s: float
    restarts: int  # restarts per server-restart fault
    between_restarts_s: float
    redis_down_s: float  # how long Redis stays down at each restart


FULL = Durations(outage_s=60, storm_s=30, tokens_s=20, slow_s=30, kills=3, between_kills_s=5, beat_stopped_s=300,
                 restarts=2, between_restarts_s=10, redis_down_s=2)
SHORT = Durations(outage_s=5, storm_s=3, tokens_s=3, slow_s=5, kills=2, between_kills_s=1.5, beat_stopped_s=3,
                  restarts=1, between_restarts_s=2, redis_down_s=0.5)
SLOW_MS = 2000
TRIES_PER_KILL = 5  # a kill that lands just after its flush finished orphans nothing: strike again


def _live_children(processes) -> list[int]:
    """The worker's pool children, without those killed but not reaped yet (zombies)."""
    import psutil

    live = []
    for pid in processes.worker_children():
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                live.append(pid)
        except psutil.NoSuchProcess:
            pass
    return live


def _strike_mid_flush(processes, *, timeout: float = 30) -> list[Lease]:
    """Return as soon as a pool child of the worker holds a running lease (a flush in
    flight); the children are looked up again now and then (the pool replaces dead ones)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _live_children(processes)
        for _ in range(100):
            leases = leases_held(children) if children else []
            if leases:
                return leases
            time.sleep(0.005)
    raise AssertionError(f"no flush was caught in flight within {timeout} s")


@dataclass(frozen=True)
class Kill:
    pids: list[int]
    orphaned: list[Lease]  # leases the killed processes held, left to run out
    killed_at: object  # datetime (django.utils.timezone.now) just before the signal


def _kill_mid_flush(processes, kill: Callable[[], list[int]]) -> Kill:
    """Strike mid-flush with `kill` (it signals and returns the pids it killed); retried
    until a kill leaves a lease orphaned (the flush it caught had not finished)."""
    from django.utils import timezone

    for _ in range(TRIES_PER_KILL):
        _strike_mid_flush(processes)
        killed_at = timezone.now()
        pids = kill()
        wait_until(lambda pids=pids: processes_gone(pids), timeout=30, message=f"killed processes {pids} still running")
        done = Kill(pids=pids, orphaned=leases_orphaned(pids), killed_at=killed_at)
        if done.orphaned:
            return done
        wait_until(lambda: _live_children(processes), timeout=30, message="no pool children after a kill")
    return done


def _kill_pool_children(processes) -> list[int]:
    pids = _live_children(processes)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def _kills_claim(kills: list[Kill], what: str) -> Claim:
    evidence = "; ".join(
        f"kill {n}: {what} {k.pids}, {len(k.orphaned)} leases held by {sorted({lease.pid for lease in k.orphaned})}"
        for n, k in enumerate(kills, 1)
    )
    return Claim(f"every kill struck {what} mid-flush (holding a running lease)",
                 bool(kills) and all(k.orphaned for k in kills), evidence)


def _orphaned(kills: list[Kill]) -> list[tuple[Lease, object]]:
    return [(lease, k.killed_at) for k in kills for lease in k.orphaned]


def _between(driver, n: int, count: int, seconds: float) -> None:
    # No wait after the last one: the fault ends when the stack is whole again, so the time
    # to converge includes the recovery (leases running out, the sweep re-waking channels).
    if n < count - 1:
        driver.wait(seconds)


def kill_worker_child(durations: Durations):
    def fault(scenario, driver) -> Effect:
        processes = scenario.live.processes

        kills = []
        for n in range(durations.kills):
            kills.append(_kill_mid_flush(processes, lambda: _kill_pool_children(processes)))
            _between(driver, n, durations.kills, durations.between_kills_s)
        # the main process forks new pool children by itself
        killed = {pid for k in kills for pid in k.pids}
        fresh = wait_until(lambda: [pid for pid in _live_children(processes) if pid not in killed], timeout=30,
                           message="no new pool children")
        orphaned = _orphaned(kills)
        return Effect(
            claims=[_kills_claim(kills, "pool children"),
                    Claim("the worker's main process forked new pool children", not killed & set(fresh),
                          f"now {fresh}, killed {sorted(killed)}")],
            afterwards=[lambda: redelivered_by_others(orphaned)],
        )

    return fault


def kill_worker_main(durations: Durations):
    def fault(scenario, driver) -> Effect:
        processes = scenario.live.processes
        kills, takeovers = [], []

        def kill() -> list[int]:
            worker = processes.children["worker"]
            pids = [worker.pid, *_live_children(processes)]
            os.killpg(worker.pid, signal.SIGKILL)  # the main process and its pool: a host lost
            worker.process.wait(10)
            # the restarted worker waits for "ready." in a fresh log, not the dead one's
            worker.log_path.rename(worker.log_path.with_name(f"worker-killed-{time.time_ns()}.log"))
            new = processes.start_worker()
            takeovers.append((pids[0], new.pid))
            return pids

        for n in range(durations.kills):
            kills.append(_kill_mid_flush(processes, kill))
            _between(driver, n, durations.kills, durations.between_kills_s)
        orphaned = _orphaned(kills)
        # Only the restarted worker runs after a kill: whatever sends the orphaned marks again is it.
        return Effect(
            claims=[_kills_claim(kills, "the worker (main process and pool children)"),
                    Claim("a new worker with a different PID replaced each killed one",
                          bool(takeovers) and all(old != new for old, new in takeovers),
                          ", ".join(f"{old} -> {new}" for old, new in takeovers))],
            afterwards=[lambda: redelivered_by_others(orphaned)],
        )

    return fault


def channel_answering(status: int, seconds: float, *, kind: str = "shopify"):
    """The channel answers `status` to every call for `seconds` (a 429 carries Retry-After: 1)."""

    def fault(scenario, driver) -> Effect:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        try:
            extra = {"retry_after": 1} if status == 429 else {}
            sandbox.fault(kind, store, status=status, seconds=seconds, **extra)
            driver.wait(seconds)
        finally:
            sandbox.fault(kind, store, clear=True)
        return Effect(statuses=frozenset({status}))

    return fault


def expired_tokens(seconds: float, *, kind: str = "shopify"):
    """For `seconds`, the channel's token expires once a second: one 401 at a time, as an
    expired token looks; the adapter refreshes it (or resends once) as the contract suite shows."""

    def fault(scenario, driver) -> Effect:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sandbox.fault(kind, store, status=401, count=1)
                driver.wait(1.0)
        finally:
            sandbox.fault(kind, store, clear=True)
        return Effect(statuses=frozenset({401}))

    return fault


def slow_channel(durations: Durations, kind: str = "woocommerce"):
    def fault(scenario, driver) -> Effect:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        started = time.time()
        try:
            sandbox.fault(kind, store, latency_ms=SLOW_MS)
            driver.wait(durations.slow_s)
        finally:
            sandbox.fault(kind, store, clear=True)
        calls = sandbox.requests(kind, store, since=started)
        slow = [call["duration_ms"] for call in calls if call["duration_ms"] >= SLOW_MS]
        return Effect(claims=[Claim(
            f"the store took >= {SLOW_MS} ms to answer calls during the fault", bool(slow),
            f"{len(slow)} of {len(calls)} calls; slowest {max(slow, default=0):.0f} ms")])

    return fault


def beat_stopped_then_two_beats(durations: Durations):
    """Beat stops for `beat_stopped_s` (a pool child is killed mid-flush meanwhile, so the
    sweep beat runs is owed work), then two beats start at once; afterwards one is left.

    What the worker takes from the broker shows what beat did: once the tasks beat sent
    before the stop have left the broker (none of its schedule's tasks queued or unacknowledged),
    the worker must take none of them until beat is back, and some after."""

    def fault(scenario, driver) -> Effect:
        import redis
        from django.conf import settings

        from syncsvc.beat import beat_leader_pid
        from syncsvc.processes import QUEUES

        processes = scenario.live.processes
        names = beat_task_names()
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)

        def beat_tasks_in_broker() -> int:
            tasks = broker_snapshot(broker, queues=QUEUES.split(",")).tasks
            return sum(1 for name in tasks.values() if name in names)

        started = time.monotonic()
        processes.children["beat"].stop()
        kill = _kill_mid_flush(processes, lambda: _kill_pool_children(processes))
        # twice in a row: a message is briefly in neither the queue nor the unacked hash
        wait_until(lambda: not beat_tasks_in_broker() and not beat_tasks_in_broker(), timeout=120, interval=0.2,
                   message="beat's tasks sent before the stop never left the broker")
        stopped = log_offsets(processes, ("worker",))
        driver.wait(max(0.0, durations.beat_stopped_s - (time.monotonic() - started)))
        while_stopped = tasks_received_since(stopped, names)
        restarted = log_offsets(processes, ("worker",))
        beats_from = {name: _log_size(processes, name) for name in ("beat", "beat-2")}
        first = processes.start_beat()
        second = processes.start_beat(name="beat-2")
        driver.wait(max(3.0, durations.beat_stopped_s / 10))
        wait_until(lambda: _sends(first, beats_from["beat"]) + _sends(second, beats_from["beat-2"]) >= 3, timeout=60,
                   interval=0.2, message="neither beat sent a schedule")
        sends = {"beat": _sends(first, beats_from["beat"]), "beat-2": _sends(second, beats_from["beat-2"])}
        leader = beat_leader_pid(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5))
        second.stop()
        del processes.children["beat-2"]
        after = wait_until(lambda: tasks_received_since(restarted, names), timeout=60, interval=0.5,
                           message="the worker took no task of beat's schedule after the restart")
        broker.close()
        return Effect(claims=[
            _kills_claim([kill], "pool children (beat stopped)"),
            Claim("no beat schedule ran while beat was stopped (the worker took none of its tasks)",
                  not while_stopped, f"{sum(while_stopped.values())} taken: {dict(while_stopped) or 'none'}"),
            Claim("beat's schedules ran again after the restart", bool(after),
                  f"{sum(after.values())} taken, e.g. {', '.join(sorted(after)[:4])}"),
            # Schedules ran once: the leader sent every one, the other beat none.
            Claim("two beats at once: one led and sent every schedule, the other sent nothing",
                  min(sends.values()) == 0 and leader == (first.pid if sends["beat"] else second.pid),
                  f"schedule sends per beat {sends}; leader pid {leader} (beat {first.pid}, beat-2 {second.pid})"),
        ])

    return fault


SENDING = b"Scheduler: Sending due task"  # Celery's beat logs this once per send


def _log_size(processes, name: str) -> int:
    path = processes.log_dir / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def _sends(child, since: int) -> int:
    return child.log_path.read_bytes()[since:].count(SENDING)


def _survived(processes, worker) -> Claim:
    """The worker rode the restart out: the same process, still running (a worker that died
    would leave nothing to take the work, with nobody here to restart it)."""
    now = processes.children["worker"]
    return Claim("the worker survived the restart (the same process, running)", now is worker and worker.alive(),
                 f"pid {worker.pid}, {'running' if worker.alive() else f'exited with {worker.process.returncode}'}")


def _wait_for_a_flush_since(processes, *, restarted_at, after: str) -> None:
    """Whole again: a flush started since the restart (the load's commits woke a channel
    through the broker, a worker took the task and reached the database)."""
    from channels.models import SyncAttempt

    def flushed() -> bool:
        worker = processes.children["worker"]
        if not worker.alive():
            raise AssertionError(f"the worker exited after {after}; its log:\n{worker.log_tail(60)}")
        return SyncAttempt.objects.filter(started_at__gt=restarted_at).exists()

    wait_until(flushed, timeout=120, interval=0.2, message=f"no flush ran after {after}")


def redis_restarted(durations: Durations):
    """The private Redis (broker, wake-up flags, rate-limit buckets, heartbeats) is stopped
    mid-flush and started empty: everything queued in it is gone. The database still holds
    every mark owed, and the sweep re-wakes the channels (DESIGN.md decision 1)."""

    def fault(scenario, driver) -> Effect:
        import redis
        from django.conf import settings
        from django.utils import timezone

        from channels.redis_client import get_redis
        from syncsvc.heartbeats import redis_client
        from syncsvc.processes import QUEUES

        server = private_services.private_redis_in_use(settings.REDIS_URL)
        assert server is not None and private_services.private_redis_in_use(settings.CELERY_BROKER_URL), \
            "not the run's private Redis: refusing to restart it"
        processes = scenario.live.processes
        worker = processes.children["worker"]
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
        befores, afters = [], []
        for n in range(durations.restarts):
            _strike_mid_flush(processes)
            broker.set(SENTINEL, "1")
            befores.append(broker_snapshot(broker, queues=QUEUES.split(",")))
            broker.close()
            private_services.redis_restart(server, down_s=durations.redis_down_s)
            afters.append(broker_snapshot(broker, queues=QUEUES.split(",")))
            for client in (get_redis(), redis_client()):  # this process's own, left on dead sockets
                client.connection_pool.disconnect()
            _wait_for_a_flush_since(processes, restarted_at=timezone.now(), after="the Redis restart")
            _between(driver, n, durations.restarts, durations.between_restarts_s)
        broker.close()
        pairs = list(zip(befores, afters, strict=True))
        queued = [(before, set(before.tasks) & set(after.tasks)) for before, after in pairs]
        return Effect(claims=[
            Claim("Redis restarted empty (a new server, our sentinel key gone)",
                  all(b.run_id != a.run_id and b.sentinel_present and not a.sentinel_present for b, a in pairs),
                  "; ".join(f"{b.keys} keys before, {a.keys} after" for b, a in pairs)),
            Claim("tasks queued or unacknowledged in Redis before each restart were gone after it",
                  all(before.tasks and not survived for before, survived in queued),
                  "; ".join(f"{len(before.tasks)} before ({task_names(before.tasks)}), {len(survived)} after"
                            for before, survived in queued)),
            _survived(processes, worker),
        ])

    return fault


def postgres_restarted(durations: Durations):
    """The private PostgreSQL is restarted (`pg_ctl restart -m fast`) mid-flush: every
    session is terminated, open transactions are rolled back; the web and the workers must
    reconnect by themselves."""

    def fault(scenario, driver) -> Effect:
        from django.db import connection

        server = private_services.private_postgres_in_use(connection.settings_dict.get("PORT"))
        assert server is not None, "not the run's private PostgreSQL: refusing to restart it"
        processes = scenario.live.processes
        worker = processes.children["worker"]
        offsets = log_offsets(processes, ("web", "worker"))
        restarts = []
        for n in range(durations.restarts):
            _strike_mid_flush(processes)
            session = open_transaction()
            before = postgres_snapshot()
            private_services.postgres_restart(server)
            connection.close()  # ours dropped too: the next query reconnects
            after = postgres_snapshot()
            restarts.append((before, after, transaction_cut(session)))
            _wait_for_a_flush_since(processes, restarted_at=after.started_at, after="the PostgreSQL restart")
            _between(driver, n, durations.restarts, durations.between_restarts_s)

        def saw_drop() -> Claim:
            lines = log_lines_since(offsets, DROPPED_CONNECTION)
            return Claim("a request or task in flight saw its connection dropped", bool(lines),
                         f"{len(lines)} log lines, first: {lines[0] if lines else 'none'}")

        return Effect(
            claims=[
                Claim("PostgreSQL restarted (a new start time, none of the sessions before survived)",
                      all(b.started_at != a.started_at and b.backends and not set(b.backends) & set(a.backends)
                          for b, a, _ in restarts),
                      "; ".join(f"{len(b.backends)} sessions before ({sum(b.backends.values())} in a transaction), "
                                f"{len(set(b.backends) & set(a.backends))} of them after" for b, a, _ in restarts)),
                Claim("a transaction open at the restart was cut", all(cut for _, _, cut in restarts),
                      "; ".join(str(cut) for _, _, cut in restarts)),
                _survived(processes, worker),
            ],
            afterwards=[saw_drop],
        )

    return fault


FAULTS = {
    "worker pool child SIGKILLed mid-flush": kill_worker_child,
    "worker main process SIGKILLed mid-flush, restarted": kill_worker_main,
    "Redis restarted without persistence (everything queued in it lost)": redis_restarted,
    "PostgreSQL restarted (connections dropped mid-transaction)": postgres_restarted,
    "Shopify answering 503": lambda durations: channel_answering(503, durations.outage_s),
    "Shopify 429 storm with Retry-After": lambda durations: channel_answering(429, durations.storm_s),
    "Shopify tokens expiring (401)": lambda durations: expired_tokens(durations.tokens_s),
    "WooCommerce answering in 2 s instead of 20 ms": slow_channel,
    "beat stopped (a pool child killed meanwhile), then two beats at once": beat_stopped_then_two_beats,
}
# The faults that restart a server: only against the run's private one (`make chaos`).
NEEDS_PRIVATE = {
    "Redis restarted without persistence (everything queued in it lost)": "redis",
    "PostgreSQL restarted (connections dropped mid-transaction)": "postgres",
}
SHORT_FORM = ("worker pool child SIGKILLed mid-flush", "Shopify answering 503")
