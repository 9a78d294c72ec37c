"""Worker hosts on one machine: Linux network namespaces, each with its own address and host
name, that reach this machine's one PostgreSQL, Redis and sandbox only over a private bridge.

    with HostNetwork(count=4) as network:            # bridge 10.213.N.1/24, hosts .11, .12, ...
        hosts = HostServices(network, env=env, log_dir=tmp)
        db_url = hosts.forward_url(database_url)     # postgres://...@10.213.N.1:5432/...
        hosts.start_workers(network.hosts[:2], env=worker_env, queues="sync.x")
        ...
        hosts.stop()

A namespace has a loopback of its own and nothing else but its end of a veth pair, so a worker
in it cannot reach `127.0.0.1` services of the machine: every connection it makes goes over
the bridge from its own address. The machine's PostgreSQL and Redis listen on 127.0.0.1 only
(and are not ours to reconfigure), so `socat` forwarders listen on the bridge address and log
each connection's peer (the forwarded connection arrives from 127.0.0.1: PostgreSQL's
`pg_stat_activity` cannot tell hosts apart, the forwarders' logs can). Each worker also runs
in a UTS namespace of its own, so its host name (Celery's `%h`, the flush's claimer, the
heartbeat key) is the host's, as on separate machines. (tests/support/tcp_proxy.py is a
fault-injecting pipe inside the test's own process; these forwarders carry every host's
database, broker and HTTP traffic, so they are separate processes, and they name the peers.)

Everything is named with a random tag, and deleted by `HostNetwork.delete()` (also on failure);
`stale_networks_delete()` removes what a killed run left behind (its owner's pid is recorded).
"""
from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from syncsvc.processes import Child, ProcessStack, wait_for

NETNS_PREFIX = "syncsvc-so-"
BRIDGE_ALIAS = "syncsvc scale-out test, owner pid "
# 10.213.0.0/16: private, and unlikely to clash with a LAN, a VPN or docker's 172.17/16.
SUBNETS = ipaddress.ip_network("10.213.0.0/16")
FIRST_HOST = 11
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class HostNetworkUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no `ip netns`, no socat)."""


def unavailable_reason() -> str | None:
    """Why worker hosts cannot be made on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "needs root: the test creates network namespaces"
    missing = [tool for tool in ("ip", "socat", "unshare") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} on PATH"
    probe = f"{NETNS_PREFIX}probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise HostNetworkUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Host:
    name: str  # its host name, also its Celery node's `%h`
    netns: str
    address: str

    def argv(self, command: list[str]) -> list[str]:
        """`command` run on this host: in its network namespace, under its own host name."""
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *command]

    def reaches(self, address: str, port: int) -> bool:
        """Whether this host can open a TCP connection to `address:port` (2 s to try)."""
        probe = ["ip", "netns", "exec", self.netns, "timeout", "2", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"]
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0


@dataclass
class HostNetwork:
    """A bridge on this machine (the gateway address) and `count` namespaces attached to it."""

    count: int
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: list[Host] = field(default_factory=list)
    gateway: str = ""
    bridge: str = ""

    def __enter__(self) -> HostNetwork:
        try:
            self.create()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.delete()

    def create(self) -> None:
        stale_networks_delete()
        subnet = _free_subnet()
        addresses = list(subnet.hosts())
        self.gateway = str(addresses[0])
        self.bridge = f"sobr{self.tag}"  # interface names: 15 characters at most
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "alias", f"{BRIDGE_ALIAS}{os.getpid()}")
        _ip("addr", "add", f"{self.gateway}/{subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index in range(1, self.count + 1):
            host = Host(f"so-{self.tag}-h{index}", f"{NETNS_PREFIX}{os.getpid()}-{self.tag}-h{index}",
                        str(addresses[FIRST_HOST - 1 + index - 1]))
            outside = _outside(self.tag, host)
            _ip("netns", "add", host.netns)
            self.hosts.append(host)
            _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/{subnet.prefixlen}", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")

    def delete(self) -> None:
        """Remove the veth pairs, the namespaces and the bridge; never raises. (A namespace's
        own veth would go with it, but the kernel frees a namespace asynchronously.)"""
        for host in self.hosts:
            _ip("link", "del", _outside(self.tag, host), check=False)
            _ip("netns", "del", host.netns, check=False)
        self.hosts = []
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)
            self.bridge = ""


def _outside(tag: str, host: Host) -> str:
    """The machine's end of a host's veth pair (15 characters at most): `so<tag>h<n>`."""
    return f"so{tag}{host.name.rpartition('-')[2]}"


def stale_networks_delete() -> None:
    """Delete the namespaces and bridges of earlier runs whose process is gone (a run killed
    before its teardown)."""
    def gone(pid: int) -> bool:
        return pid != os.getpid() and not Path(f"/proc/{pid}").exists()

    for line in _ip("netns", "list", check=False).stdout.splitlines():
        match = re.match(rf"({re.escape(NETNS_PREFIX)}(\d+)-(\w+)-(h\d+))", line)
        if match and gone(int(match.group(2))):
            _ip("link", "del", f"so{match.group(3)}{match.group(4)}", check=False)  # its veth, now
            _ip("netns", "del", match.group(1), check=False)
    for line in _ip("-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        match = re.match(r"\d+: (sobr\w+):.*alias " + re.escape(BRIDGE_ALIAS) + r"(\d+)", line)
        if match and gone(int(match.group(2))):
            _ip("link", "del", match.group(1), check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNETS that no address or route on this machine uses."""
    used = _ip("-o", "addr", "show", check=False).stdout + _ip("route", "show", check=False).stdout
    candidates = list(SUBNETS.subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        if f"{subnet.network_address}".rsplit(".", 1)[0] + "." not in used:
            return subnet
    raise HostNetworkUnavailable(f"every /24 of {SUBNETS} is in use here")


_ACCEPTED = re.compile(r"accepting connection from AF=2 (\d+\.\d+\.\d+\.\d+):\d+")


@dataclass
class Forwarder:
    """`socat` listening on the bridge, forwarding to a loopback service; logs every peer."""

    child: Child
    listen: tuple[str, int]
    target: tuple[str, int]

    def peers(self) -> set[str]:
        """The addresses that connected through this forwarder so far."""
        return set(_ACCEPTED.findall(self.child.log_path.read_text(errors="replace")))


class HostServices:
    """This machine as the worker hosts see it: forwarders on the bridge to its services, and
    one Celery worker per host (started and stopped here, in their namespaces)."""

    def __init__(self, network: HostNetwork, *, env: dict[str, str], log_dir: Path) -> None:
        self.network = network
        self.machine = ProcessStack(env=env, log_dir=log_dir)
        self.forwarders: dict[str, Forwarder] = {}
        self.workers: dict[str, Child] = {}
        self._worker_stacks: list[ProcessStack] = []
        self.log_dir = log_dir

    def forward(self, name: str, host: str, port: int) -> Forwarder:
        """Listen on the gateway's `port` (the same number: the address differs) and forward
        each connection to `host:port` on this machine."""
        key = f"{host}:{port}"
        if key in self.forwarders:
            return self.forwarders[key]
        child = self.machine.spawn(
            f"forward-{name}-{port}",
            ["socat", "-d", "-d", f"TCP-LISTEN:{port},bind={self.network.gateway},fork,reuseaddr", f"TCP:{host}:{port}"],
        )
        # Its log says so (a test connection would show up among the peers).
        wait_for(lambda: b"listening on" in child.log_path.read_bytes() or not child.alive(), timeout=10,
                 message=f"forwarder to {key} never listened:\n{child.log_tail()}")
        if not child.alive():
            raise RuntimeError(f"forwarder to {key} exited:\n{child.log_tail()}")
        forwarder = self.forwarders[key] = Forwarder(child, (self.network.gateway, port), (host, port))
        return forwarder

    def forward_url(self, name: str, url: str) -> str:
        """`url` (a loopback service of this machine) as the hosts reach it: via the gateway."""
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK or parts.port is None and parts.scheme not in _DEFAULT_PORTS:
            raise HostNetworkUnavailable(f"{name}: only loopback TCP services are forwarded, not {parts.scheme}://{parts.hostname}")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self.forward(name, parts.hostname if parts.hostname != "localhost" else "127.0.0.1", port)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{self.network.gateway}:{port}" if auth else f"{self.network.gateway}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start_workers(self, hosts: list[Host], *, env: dict[str, str], queues: str, concurrency: int = 1) -> list[Child]:
        """A Celery worker on each host (node `scaleout@<host name>`), started together;
        returns when every one is ready."""
        stack = ProcessStack(env=env, log_dir=self.log_dir)
        self._worker_stacks.append(stack)
        started = []
        for host in hosts:
            argv = host.argv(
                [sys.executable, "-m", "celery", "-A", "syncsvc", "worker", "-Q", queues, "-c", str(concurrency),
                 "--pool", "prefork", "-l", "info", "-n", "scaleout@%h", "--without-gossip", "--without-mingle"]
            )
            child = self.workers[host.name] = stack.spawn(f"worker-{host.name}", argv)
            started.append(child)
        for child in started:
            wait_for(lambda c=child: b"ready." in c.log_path.read_bytes() or not c.alive(), timeout=90,
                     message=f"{child.name} did not start:\n{child.log_tail()}")
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
        return started

    def consume(self, hosts: list[Host], queue: str) -> None:
        """Have the hosts' running workers consume `queue` too (Celery's remote control, over
        the broker: as an operator would move workers between queues)."""
        from syncsvc.celery import app

        nodes = [f"scaleout@{host.name}" for host in hosts]
        replies = app.control.add_consumer(queue, destination=nodes, reply=True, timeout=10)
        answered = {node for reply in replies or [] for node in reply}
        if answered != set(nodes):
            raise RuntimeError(f"add_consumer {queue}: asked {nodes}, answered {sorted(answered)}")

    def worker_log(self, host: Host) -> str:
        child = self.workers.get(host.name)
        return child.log_path.read_text(errors="replace") if child else ""

    def stop(self) -> None:
        """Workers first (a namespace with a process in it outlives `ip netns del`), all told
        at once (each finishes its task in a warm shutdown), then the forwarders and the sandbox."""
        workers = [child for stack in self._worker_stacks for child in stack.children.values()]
        for child in workers:
            if child.alive():
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for child in workers:
            child.stop()
        self.machine.stop()


_DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672, "http": 80}
