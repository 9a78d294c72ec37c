"""One pooled HTTP session per channel per process, so flushes reuse connections."""
from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

_sessions: dict[tuple[int, int], requests.Session] = {}


def _log_response(response: requests.Response, *args, **kwargs) -> None:
    # The path only: some channels take credentials in the query string (WooCommerce).
    url = urlsplit(response.request.url)
    log.info("%s %s://%s%s -> %s in %.0f ms", response.request.method, url.scheme, url.netloc, url.path,
             response.status_code, response.elapsed.total_seconds() * 1000)


def session_for(channel_id: int) -> requests.Session:
    key = (os.getpid(), channel_id)  # never share a pooled socket across a fork
    session = _sessions.get(key)
    if session is None:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0))
        session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0))
        session.headers["User-Agent"] = "syncsvc/0.1"
        session.trust_env = False  # no proxy/netrc lookups in the environment on every call
        session.hooks["response"].append(_log_response)  # a line per call, with the flush's change ids
        _sessions[key] = session
    return session


def retry_after_seconds(response: requests.Response, default: float | None = None) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
