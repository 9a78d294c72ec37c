"""Beat leadership: however many `celery beat` processes run, one leads and only the leader
sends, so each schedule entry goes out once per due time.

- The leader holds a lock in Redis (`SYNCSVC["BEAT_LEADER_KEY"]`): a key naming its holder
  (`host:pid:random`), set only when absent and renewed only by its holder (Lua), living
  BEAT_LEADER_TTL_S. Every tick renews it, and the leader ticks at least every quarter TTL.
- A follower sends nothing and tries again every quarter TTL. A SIGKILLed leader's lock runs
  out within the TTL, so a follower leads within 1.25 x TTL; a beat stopped cleanly deletes
  its own lock on the way out, so a follower leads at its next try.
- Right before each send the leader claims it (Lua, atomic: is the lock still ours? then
  renew it and note the send time in the `<key>:sent` hash). A leader that lost the lock
  (paused past the TTL, Redis restarted, the key removed) sends nothing until it leads again.
- Whoever starts to lead takes the last send time of every entry from that hash, so it does
  not fire again what the previous leader sent this period: its own schedule state may be
  older (the file scheduler's file is per process, and django-celery-beat writes
  `last_run_at` back only every few minutes and loses it on a SIGKILL). Entries the hash
  does not know (Redis restarted empty) go by the scheduler's own state, as before.
- Redis unreachable: no beat can show it leads, so none sends, and beat keeps running; the
  first to reach Redis again leads. Every change of standing is logged once.
- SIGTERM/SIGINT stop beat between two sends (or two ticks), never inside one: it saves its
  schedule, releases its lock and exits (`LeaderSchedulerMixin.stop_requested`).

A leader paused between a claim and its publish publishes that message when it resumes,
maybe after a new leader began: late, but for the due time it claimed, which the new leader
went by, so still once per due time. Left open: what the hash no longer shows (Redis
restarted empty, the key removed) a new leader takes from its own schedule state, so an
entry sent moments before may go out once more, early. The jobs beat sends only kick off
work that claims its own rows, so that rare repeat costs a little load, nothing more.
"""
from __future__ import annotations

import enum
import logging
import os
import secrets
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

import redis
from celery import platforms
from celery.beat import PersistentScheduler
from celery.signals import beat_init
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from .redis_clients import redis_for

log = logging.getLogger(__name__)

# KEYS: lock. ARGV: our identity, TTL in ms. {1, holder}: renewed, {2, holder}: taken (it was
# free), {0, holder}: someone else holds it.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, holder}
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2, ARGV[1]}
end
return {0, holder}
"""
# KEYS: lock, sent hash. ARGV: our identity, TTL in ms, entry name, send time. 1: claimed.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
# KEYS: lock. ARGV: our identity. 1: deleted (it was ours).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Standing(enum.Enum):
    LEADING = "leading"  # the lock was ours and is renewed
    GAINED = "gained"  # the lock is ours since this check (first time, or again after losing it)
    FOLLOWING = "following"  # another beat holds it
    UNREACHABLE = "unreachable"  # Redis did not answer: nobody can show it leads

    @property
    def leads(self) -> bool:
        return self in (Standing.LEADING, Standing.GAINED)


@dataclass(frozen=True)
class Hold:
    ours: bool
    taken: bool  # the lock was free and is ours now (not a renewal)
    holder: str


def beat_identity() -> str:
    """`host:pid:random`: says which process leads, and differs between two schedulers in one."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class LeaderLock:
    """The leader lock in Redis; every method raises `redis.RedisError` when Redis fails."""

    client: redis.Redis
    key: str
    ttl_s: float
    identity: str = field(default_factory=beat_identity)

    @property
    def sent_key(self) -> str:
        return f"{self.key}:sent"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    @cached_property
    def _scripts(self):
        return (self.client.register_script(_HOLD), self.client.register_script(_CLAIM),
                self.client.register_script(_RELEASE))

    def hold(self) -> Hold:
        """Renew the lock if it is ours, take it if it is free."""
        code, holder = self._scripts[0](keys=[self.key], args=[self.identity, self._ttl_ms])
        return Hold(ours=code != 0, taken=code == 2, holder=_text(holder))

    def claim(self, entry_name: str, *, at: float) -> bool:
        """While the lock is ours: renew it and note that `entry_name` is sent at `at`."""
        return bool(self._scripts[1](keys=[self.key, self.sent_key],
                                     args=[self.identity, self._ttl_ms, entry_name, repr(at)]))

    def release(self) -> bool:
        """Delete the lock if it is ours (a clean stop hands over without waiting for the TTL)."""
        return bool(self._scripts[2](keys=[self.key], args=[self.identity]))

    def last_sends(self) -> dict[str, datetime]:
        """When each entry was last sent, by any leader."""
        raw = self.client.hgetall(self.sent_key)
        return {_text(name): datetime.fromtimestamp(float(at), tz=timezone.utc) for name, at in raw.items()}

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return _text(value) if value is not None else None


def beat_leader_pid(client: redis.Redis | None = None) -> int | None:
    """The pid of the beat leading now (for operators and tests), or None when none does;
    `client` defaults to the project's Redis."""
    client = client or redis_for("beat", timeout_s=2, connect_timeout_s=2)
    holder = client.get(settings.SYNCSVC["BEAT_LEADER_KEY"])
    return int(_text(holder).split(":")[1]) if holder is not None else None


class BeatLeadership:
    """One beat's standing, from its lock: Redis failures become "not leading", and every
    change of standing is logged once."""

    def __init__(self, lock: LeaderLock):
        self.lock = lock
        self.leading = False
        self._followed: str | None = None
        self._unreachable = False

    @classmethod
    def from_settings(cls) -> BeatLeadership:
        config = settings.SYNCSVC
        # Short timeouts: a beat waiting on Redis is a beat that does not tick.
        client = redis_for("beat", timeout_s=2, connect_timeout_s=2)
        return cls(LeaderLock(client, key=config["BEAT_LEADER_KEY"], ttl_s=config["BEAT_LEADER_TTL_S"]))

    @property
    def poll_s(self) -> float:
        """How long a follower waits before trying again, and a leader's longest sleep."""
        return self.lock.ttl_s / 4

    def check(self) -> Standing:
        try:
            held = self.lock.hold()
        except redis.RedisError as exc:
            self._lose_redis(exc)
            return Standing.UNREACHABLE
        self._redis_back()
        if not held.ours:
            if self.leading:
                log.warning("beat leadership: lost to %s; sending nothing while it leads", held.holder)
            elif held.holder != self._followed:
                log.info("beat leadership: following %s; trying again every %.3gs", held.holder, self.poll_s)
            self.leading, self._followed = False, held.holder
            return Standing.FOLLOWING
        if self.leading and not held.taken:
            return Standing.LEADING
        if self.leading:
            log.warning("beat leadership: leading again as %s (the lock had run out or was removed)",
                        self.lock.identity)
        else:
            log.info("beat leadership: leading as %s (lock %s, %.3gs)", self.lock.identity, self.lock.key,
                     self.lock.ttl_s)
        self.leading, self._followed = True, None
        return Standing.GAINED

    def claim(self, entry_name: str) -> bool:
        """Whether this beat may send `entry_name` now (the lock is still ours)."""
        try:
            claimed = self.lock.claim(entry_name, at=time.time())
        except redis.RedisError as exc:
            self._lose_redis(exc)
            claimed = False
        if not claimed and self.leading:
            log.warning("beat leadership: lost before sending %s; not sent", entry_name)
        self.leading = self.leading and claimed
        return claimed

    def last_sends(self) -> dict[str, datetime]:
        try:
            return self.lock.last_sends()
        except redis.RedisError as exc:
            log.warning("beat leadership: last sends not read (%s); going by this beat's own schedule",
                        exc.__class__.__name__)
            return {}

    def release(self) -> None:
        try:
            if self.lock.release():
                log.info("beat leadership: released by %s", self.lock.identity)
        except redis.RedisError as exc:  # stopping anyway: the lock's TTL ends it
            log.info("beat leadership: lock not released (%s)", exc.__class__.__name__)
        self.leading = False

    def _lose_redis(self, exc: redis.RedisError) -> None:
        if not self._unreachable:
            log.warning("beat leadership: Redis unreachable (%s); sending nothing until it answers",
                        exc.__class__.__name__)
        self._unreachable, self.leading, self._followed = True, False, None

    def _redis_back(self) -> None:
        if self._unreachable:
            log.info("beat leadership: Redis answers again")
        self._unreachable = False


class LeaderSchedulerMixin:
    """Put before a Celery scheduler class: it ticks only while this beat leads, sends an entry
    only after claiming it, and on starting to lead takes the previous leader's last sends."""

    @cached_property
    def _leadership(self) -> BeatLeadership:
        # Built at the first tick, not in __init__: `celery beat` also makes a lazy scheduler
        # for its banner, which must not take the lock.
        return BeatLeadership.from_settings()

    _closed = False
    _stopping = False  # SIGTERM/SIGINT asked this beat to stop
    _busy = False  # in a tick: a send or a database query may be under way

    def tick(self, *args, **kwargs):
        with self._busy_now():
            standing = self._leadership.check()
            if not standing.leads:
                return self._leadership.poll_s
            if standing is Standing.GAINED:
                self._take_over(self._leadership.last_sends())
            return min(super().tick(*args, **kwargs), self._leadership.poll_s)

    def _do_sync(self):  # Service.start saves the schedule between ticks (a database write)
        with self._busy_now():
            super()._do_sync()

    def apply_entry(self, entry, producer=None):
        self._exit_if_stopping()  # between two sends: the rest of this tick's are not sent
        if self._leadership.claim(entry.name):
            super().apply_entry(entry, producer=producer)

    def stop_requested(self) -> None:
        """From the SIGTERM/SIGINT handler (`_stop_between_sends`). Celery's own handler
        closes the scheduler and raises SystemExit wherever the signal struck: inside a
        send, where the broker client's clean-up turns it into an error Celery logs and
        swallows (beat ran on and took its lock again), or inside a database query, where
        the close queries the same connection again and waits on it for ever (until the
        supervisor's SIGKILL). So the exit is raised here only while beat sleeps between
        ticks; in a tick it is raised at the next send or at the tick's end."""
        self._stopping = True
        if not self._busy:
            raise SystemExit()

    def close(self):
        # Once, whoever closes first (Service.start on its way out, a signal handler).
        if self._closed:
            return
        self._closed = True
        try:
            super().close()
        finally:
            if "_leadership" in self.__dict__:
                self._leadership.release()

    def _exit_if_stopping(self) -> None:
        if self._stopping:
            raise SystemExit()

    @contextmanager
    def _busy_now(self):
        self._exit_if_stopping()
        self._busy = True
        try:
            yield
        finally:
            self._busy = False
        self._exit_if_stopping()

    @property
    def info(self):
        config = settings.SYNCSVC
        lock = f"    . leader lock -> {config['BEAT_LEADER_KEY']} ({config['BEAT_LEADER_TTL_S']:g}s)"
        return "\n".join(part for part in (super().info, lock) if part)

    def _take_over(self, last_sends: dict[str, datetime]) -> None:
        raise NotImplementedError


@beat_init.connect
def _stop_between_sends(sender, **kwargs) -> None:
    """Replace the SIGTERM/SIGINT handler Celery installs just before `Service.start` (which
    sends beat_init) with one that asks a leader-locked scheduler to stop; Service.start
    closes it (saving the schedule, releasing the lock) on its way out."""
    scheduler = sender.scheduler
    if not isinstance(scheduler, LeaderSchedulerMixin):
        return

    def stop(signum, frame) -> None:
        scheduler.stop_requested()

    platforms.signals.update(SIGTERM=stop, SIGINT=stop)


class LeaderPersistentScheduler(LeaderSchedulerMixin, PersistentScheduler):
    """Celery's file scheduler, leading through the lock. The file is this process's own: on
    starting to lead, every entry the hash knows takes its last send from there."""

    def _take_over(self, last_sends: dict[str, datetime]) -> None:
        schedule = self.schedule
        for name, at in last_sends.items():
            entry = schedule.get(name)
            if entry is not None:
                entry.last_run_at = at
        self._heap = None  # rebuilt from the entries at this tick


class LeaderDatabaseScheduler(LeaderSchedulerMixin, DatabaseScheduler):
    """django-celery-beat's scheduler, leading through the lock. On starting to lead it reads
    the rows afresh (a follower's copy may be hours old) and lays the hash's last sends over
    their `last_run_at` (written back to the rows at its next sync)."""

    _pending_sends: dict[str, datetime] | None = None

    def _take_over(self, last_sends: dict[str, datetime]) -> None:
        self._pending_sends = last_sends
        self._initial_read = True  # the `schedule` property reads the rows at this tick
        self._heap = None

    def all_as_schedule(self):
        schedule = super().all_as_schedule()
        sends, self._pending_sends = self._pending_sends or {}, None
        for name, at in sends.items():
            entry = schedule.get(name)
            if entry is not None:
                entry.model.last_run_at = entry.last_run_at = at
                self._dirty.add(name)
        return schedule
