"""Counting calls in time windows: what the scale-out test and benchmark assert and report.

A channel's limit is a token bucket (`channels/ratelimit.py`): `burst` tokens, refilled at
`rate` per second, one per call. However the takes are spread, any interval of `w` seconds
holds at most `burst + rate * w` of them. The store sees arrivals, not takes: a call taken at
t arrives after its send path (building the body, the forwarder, a busy CPU), so arrivals in a
window of `w` come from takes in a window up to `w + jitter` long.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

# How much later than its take a call may reach the store on a loaded 2-core machine. With
# a small burst and rate, the bound's integer part is the same for any jitter up to
# (1 - frac(burst + rate * w)) / rate: for burst 1 and 3/s, a third of a second.
ARRIVAL_JITTER_S = 0.25


def limit_bound(*, rate: float, burst: float, window_s: float, jitter_s: float = ARRIVAL_JITTER_S) -> int:
    """The most calls a bucket of `rate`/`burst` lets reach a store in any `window_s`."""
    return math.floor(burst + rate * (window_s + jitter_s))


def max_in_window(times: Sequence[float], window_s: float) -> int:
    """The most of `times` (sorted) that fall in any closed interval `window_s` long."""
    most = 0
    for index, start in enumerate(times):
        most = max(most, bisect_right(times, start + window_s) - index)
    return most


def count_between(times: Sequence[float], start: float, end: float) -> int:
    """How many of `times` (sorted) fall in [start, end)."""
    return bisect_left(times, end) - bisect_left(times, start)
