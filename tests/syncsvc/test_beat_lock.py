"""The beat leader lock (syncsvc/beat.py) against the test Redis: taken when free, renewed
by its holder only, never taken from a holder, lost when it runs out; and the standing a
beat reads from it, Redis failures included. Each test has a key of its own."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from syncsvc.beat import BeatLeadership, LeaderLock, Standing
from syncsvc.processes import free_port
from syncsvc.redis_clients import redis_for
from tests.support.sandbox import wait_until

TTL_S = 20.0


@pytest.fixture
def client():
    return redis_for("beat-lock-test", timeout_s=5, connect_timeout_s=2)


@pytest.fixture
def key(client):
    key = f"test:beat-lock:{uuid.uuid4().hex[:10]}"
    yield key
    client.delete(key, f"{key}:sent")


def lock(client, key, ttl_s: float = TTL_S) -> LeaderLock:
    return LeaderLock(client, key=key, ttl_s=ttl_s)


def test_a_free_lock_is_taken_for_its_ttl_under_the_holders_name(client, key):
    # given
    first = lock(client, key)

    # when
    held = first.hold()

    # then
    assert held.ours and held.taken and held.holder == first.identity
    assert client.get(key).decode() == first.identity
    assert 0 < client.pttl(key) <= TTL_S * 1000


def test_the_holder_renews_its_lock(client, key):
    # given: a lock about to run out (as if most of its TTL had passed)
    first = lock(client, key)
    first.hold()
    client.pexpire(key, 500)

    # when
    held = first.hold()

    # then
    assert held.ours and not held.taken
    assert client.pttl(key) > 500


def test_a_held_lock_is_not_taken_renewed_claimed_or_released_by_another(client, key):
    # given
    first, second = lock(client, key), lock(client, key)
    first.hold()

    # when
    held = second.hold()
    claimed = second.claim("syncsvc-heartbeat", at=1.0)
    released = second.release()

    # then
    assert not held.ours and held.holder == first.identity
    assert not claimed and not released
    assert client.get(key).decode() == first.identity
    assert first.last_sends() == {}


def test_a_lock_that_ran_out_is_lost_to_the_next_beat(client, key):
    # given: a holder that stopped renewing (paused, killed)
    first, second = lock(client, key, ttl_s=0.2), lock(client, key)
    first.hold()
    wait_until(lambda: not client.exists(key), timeout=10, message="the lock never ran out")

    # when
    taken = second.hold()

    # then: the old holder can neither renew nor claim a send any more
    assert taken.ours and taken.taken
    assert first.hold().holder == second.identity and not first.hold().ours
    assert not first.claim("syncsvc-heartbeat", at=1.0)


def test_a_claim_renews_the_lock_and_notes_the_send(client, key):
    # given
    first = lock(client, key)
    first.hold()
    client.pexpire(key, 500)

    # when
    claimed = first.claim("syncsvc-heartbeat", at=1_700_000_000.25)

    # then
    assert claimed and client.pttl(key) > 500
    assert first.last_sends() == {"syncsvc-heartbeat": datetime.fromtimestamp(1_700_000_000.25, tz=timezone.utc)}


def test_release_deletes_the_holders_lock_so_the_next_beat_takes_it_at_once(client, key):
    # given
    first, second = lock(client, key), lock(client, key)
    first.hold()

    # when
    released = first.release()

    # then
    assert released and not client.exists(key)
    assert second.hold().taken


def test_leadership_logs_each_change_of_standing_once(client, key, caplog):
    # given
    caplog.set_level(logging.INFO, logger="syncsvc.beat")
    first, second = BeatLeadership(lock(client, key)), BeatLeadership(lock(client, key))

    # when: first leads, second follows (checked twice each), then first's lock is removed
    # and second takes it
    standings = [first.check(), first.check(), second.check(), second.check()]
    client.delete(key)
    standings += [second.check(), first.check()]

    # then
    assert standings == [Standing.GAINED, Standing.LEADING, Standing.FOLLOWING, Standing.FOLLOWING,
                         Standing.GAINED, Standing.FOLLOWING]
    messages = [record.getMessage() for record in caplog.records if record.name == "syncsvc.beat"]
    assert messages == [
        f"beat leadership: leading as {first.lock.identity} (lock {key}, 20s)",
        f"beat leadership: following {first.lock.identity}; trying again every 5s",
        f"beat leadership: leading as {second.lock.identity} (lock {key}, 20s)",
        f"beat leadership: lost to {second.lock.identity}; sending nothing while it leads",
    ]
    assert not first.leading and second.leading


def test_a_leader_whose_lock_vanished_leads_again_and_takes_over_as_if_new(client, key, caplog):
    # given: a leader; Redis restarted empty, or the key was removed
    leadership = BeatLeadership(lock(client, key))
    leadership.check()
    client.delete(key)

    # when
    with caplog.at_level(logging.WARNING, logger="syncsvc.beat"):
        standing = leadership.check()

    # then: GAINED, so the scheduler takes the last sends again (another beat may have led)
    assert standing is Standing.GAINED
    assert "leading again" in caplog.text


def test_unreachable_redis_means_not_leading_and_nothing_raised(caplog):
    # given: nothing listens on the port; no retries, so each call fails at once
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    leadership = BeatLeadership(LeaderLock(unreachable, key="test:beat-lock:unreachable", ttl_s=TTL_S))

    # when
    with caplog.at_level(logging.INFO, logger="syncsvc.beat"):
        standings = [leadership.check(), leadership.check()]
        claimed = leadership.claim("syncsvc-heartbeat")
        sends = leadership.last_sends()
        leadership.release()

    # then: not leading, said once
    assert standings == [Standing.UNREACHABLE, Standing.UNREACHABLE]
    assert not claimed and sends == {} and not leadership.leading
    assert caplog.text.count("Redis unreachable") == 1
