"""The global adaptive token bucket, against the real Redis."""
from __future__ import annotations

import itertools
import uuid

import pytest

from channels.ratelimit import bucket_observe, bucket_pause, bucket_take


@pytest.fixture
def key():
    return f"test-{uuid.uuid4().hex}"


def test_a_full_bucket_gives_its_burst_then_says_how_long_to_wait(key):
    assert [bucket_take(key, rate_per_s=10, burst=5) for _ in range(5)] == [0.0] * 5
    wait = bucket_take(key, rate_per_s=10, burst=5)
    assert 0.05 < wait <= 0.1


def test_the_channels_report_lowers_our_count_and_sets_its_size_and_rate(key):
    # given: we think the bucket is full (1000); the channel says 50 left of 2000, restoring 100/s
    bucket_observe(key, rate_per_s=50, burst=1000, available=50, maximum=2000, restore_rate=100)

    # when: a call costs 150
    wait = bucket_take(key, rate_per_s=50, burst=1000, cost=150)

    # then: it waits for 100 points at the channel's rate, not ours
    assert 0.9 < wait <= 1.0


def test_a_refund_returns_unspent_points(key):
    assert bucket_take(key, rate_per_s=1, burst=100, cost=100) == 0.0
    bucket_observe(key, rate_per_s=1, burst=100, refund=90)
    assert bucket_take(key, rate_per_s=1, burst=100, cost=80) == 0.0


def test_a_pause_stops_every_taker_until_it_ends(key):
    bucket_pause(key, rate_per_s=100, burst=100, seconds=2)
    wait = bucket_take(key, rate_per_s=100, burst=100)
    assert 1.5 < wait <= 2.0


def test_the_bucket_is_shared_across_processes(key):
    import subprocess
    import sys

    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','syncsvc.settings'); django.setup();"
        "from channels.ratelimit import bucket_take;"
        f"print(sum(bucket_take('{key}', rate_per_s=0.001, burst=10) == 0.0 for _ in range(10)))"
    )
    taken = [int(subprocess.check_output([sys.executable, "-c", code], text=True).split()[-1]) for _ in range(2)]
    assert sorted(taken) == [0, 10]


def test_refused_calls_queue_behind_each_other_by_what_they_spend(key):
    # given: an empty bucket restoring 100 points/s
    assert bucket_take(key, rate_per_s=100, burst=300, cost=300) == 0.0

    # when: three calls requesting 110 points, each to keep 100 after its refund, are refused
    waits = [bucket_take(key, rate_per_s=100, burst=300, cost=110, spend=100) for _ in range(3)]

    # then: the first comes back when its 110 are there, each next one 100 points (1 s) later,
    # instead of all three at once (when only one of them could go)
    assert 1.05 < waits[0] <= 1.1
    assert [round(later - earlier, 1) for earlier, later in itertools.pairwise(waits)] == [1.0, 1.0]


def test_a_full_bucket_forgets_a_queue_nobody_came_back_for(key):
    # given: calls refused and queued behind each other, that never come back
    assert bucket_take(key, rate_per_s=100, burst=300, cost=300) == 0.0
    for _ in range(5):
        bucket_take(key, rate_per_s=100, burst=300, cost=110)
    # ...then the bucket is full again (here: refunded) and a call takes it whole
    bucket_observe(key, rate_per_s=100, burst=300, refund=300)
    assert bucket_take(key, rate_per_s=100, burst=300, cost=300) == 0.0

    # when: the next call is refused
    wait = bucket_take(key, rate_per_s=100, burst=300, cost=50)

    # then: it waits for its own 50 points only, not behind the stale queue
    assert 0.4 < wait <= 0.6


def test_a_call_with_a_follower_goes_only_when_the_bucket_holds_both(key):
    # given: 13 points left, restoring 10 points/s
    assert bucket_take(key, rate_per_s=10, burst=100, cost=87) == 0.0

    # when: a 3-point read whose 11-point write must follow asks, then a lone 3-point call
    read_wait = bucket_take(key, rate_per_s=10, burst=100, cost=3, then=11)
    lone_wait = bucket_take(key, rate_per_s=10, burst=100, cost=3)

    # then: the read waits for the 1 point the pair lacks (and takes nothing), the lone call goes
    assert 0.05 < read_wait <= 0.1
    assert lone_wait == 0.0
