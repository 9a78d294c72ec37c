"""Stand-ins for the REST adapters' unit tests: an in-memory ChannelContext and a stub HTTP
session that sees every request as requests prepared it for the wire (URL encoding, auth
headers, JSON body) and answers from a test's canned shop. No sockets, no database."""
from __future__ import annotations

import json as jsonlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from channels.adapters import http
from channels.adapters.base import ChannelConfig


@dataclass
class Sent:
    """One request as it left the adapter."""

    method: str
    url: str
    headers: CaseInsensitiveDict
    body: bytes

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.url).path)

    @property
    def raw_query(self) -> str:
        return urlsplit(self.url).query

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def json(self):
        return jsonlib.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


def reply(status: int = 200, json=None, *, content: bytes | None = None, headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = content if content is not None else (b"" if json is None else jsonlib.dumps(json).encode())
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    response.encoding = "utf-8"
    return response


class StubSession(requests.Session):
    """A real Session (so requests prepares URL, auth and body) whose `send` asks `handler`."""

    def __init__(self, handler: Callable[[Sent], requests.Response]):
        super().__init__()
        self.handler = handler
        self.sent: list[Sent] = []

    def send(self, request, **kwargs):
        body = request.body or b""
        sent = Sent(request.method, request.url, CaseInsensitiveDict(request.headers),
                    body.encode() if isinstance(body, str) else body)
        self.sent.append(sent)
        response = self.handler(sent)
        response.url = request.url
        response.request = request
        return response


def install(monkeypatch, channel_id: int, handler) -> StubSession:
    """Make `session_for(channel_id)` answer the stub, for every adapter module at once."""
    session = StubSession(handler)
    monkeypatch.setitem(http._sessions, (os.getpid(), channel_id), session)
    return session


@dataclass
class FakeContext:
    """The ChannelContext in memory: scripted bucket waits, recorded pauses and observations."""

    waits: dict[str, list[float]] = field(default_factory=dict)
    acquired: list[str] = field(default_factory=list)
    costs: list[tuple[str, float]] = field(default_factory=list)
    pauses: list[tuple[float, str]] = field(default_factory=list)
    observed: list[dict] = field(default_factory=list)
    cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    def acquire(self, cost: float = 1.0, *, bucket: str = "default") -> float:
        self.acquired.append(bucket)
        self.costs.append((bucket, cost))
        queue = self.waits.get(bucket)
        return queue.pop(0) if queue else 0.0

    def observe(self, *, bucket="default", available=None, maximum=None, restore_rate=None, refund=0.0) -> None:
        self.observed.append({"bucket": bucket, "available": available, "maximum": maximum,
                              "restore_rate": restore_rate, "refund": refund})

    def pause(self, seconds: float, *, bucket: str = "default") -> None:
        self.pauses.append((seconds, bucket))

    def cache_get(self, name: str) -> str | None:
        held = self.cache.get(name)
        return held[0] if held else None

    def cache_set(self, name: str, value: str, ttl_s: float) -> None:
        self.cache[name] = (value, ttl_s)

    def cache_delete(self, name: str) -> None:
        self.cache.pop(name, None)


def config(kind: str, base_url: str, credentials: dict, settings: dict | None = None, channel_id: int = 9001) -> ChannelConfig:
    return ChannelConfig(id=channel_id, name=f"{kind}-test", kind=kind, base_url=base_url,
                         credentials=credentials, settings=settings or {})
