"""The worker hosts leave nothing behind: a network that fails halfway is deleted, and the
next run deletes what a killed run left. Root with `ip netns` only, like the scale-out test."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.scaleout import hosts
from tests.scaleout.hosts import (
    HostNetwork,
    HostNetworkUnavailable,
    stale_networks_delete,
    unavailable_reason,
)


@pytest.fixture
def can_make_hosts():
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"scale-out hosts: {reason}")


def _left_behind(tag: str) -> str:
    """Namespaces and links on this machine that carry `tag`."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    listed += subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return "\n".join(line for line in listed.splitlines() if tag in line)


def test_hosts_are_refused_without_root_saying_why(monkeypatch):
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 1000)
    assert unavailable_reason() == "needs root: the test creates network namespaces"


def test_a_network_that_fails_halfway_leaves_nothing_behind(can_make_hosts, monkeypatch):
    # given: the second host's address cannot be set
    tag = uuid.uuid4().hex[:6]
    real_ip = hosts._ip

    def failing_ip(*args, check=True):
        if args[:2] == ("-n", f"{hosts.NETNS_PREFIX}{hosts.os.getpid()}-{tag}-h2") and "addr" in args:
            raise HostNetworkUnavailable("injected")
        return real_ip(*args, check=check)

    monkeypatch.setattr(hosts, "_ip", failing_ip)

    # when
    with pytest.raises(HostNetworkUnavailable, match="injected"), HostNetwork(count=2, tag=tag):
        pass

    # then
    assert _left_behind(tag) == ""


def test_the_network_of_a_killed_run_is_deleted_by_the_next(can_make_hosts):
    # given: a run that made its network and died without its teardown
    tag = uuid.uuid4().hex[:6]
    killed_run = textwrap.dedent(f"""
        import os
        from tests.scaleout.hosts import HostNetwork
        HostNetwork(count=2, tag={tag!r}).create()
        os._exit(9)
    """)
    subprocess.run([sys.executable, "-c", killed_run], cwd=hosts.Path(__file__).resolve().parents[2], timeout=60)
    assert tag in _left_behind(tag)

    # when
    stale_networks_delete()

    # then
    assert _left_behind(tag) == ""
