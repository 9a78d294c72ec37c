"""OAuth 1.0a request signing (RFC 5849), one-legged: what WooCommerce asks for over plain
HTTP, where Basic auth would send the secret in the clear.

Only the query string carries parameters (WooCommerce reads them there reliably; the body is
JSON and is not signed). The URL this builds is the URL to send, byte for byte, so the server
recomputes the same base string.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

HASHES = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}


def percent_encode(value: str) -> str:
    """RFC 5849 3.6: everything but ALPHA, DIGIT, "-", ".", "_", "~" as %XX of its UTF-8 bytes."""
    return quote(str(value), safe="~")


def base_string_uri(url: str) -> str:
    """RFC 5849 3.4.1.2: scheme and host in lower case, the default port left out, no query."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    netloc = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def normalized_parameters(params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1.3.2: encode each name and value, sort by name then value, join."""
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in encoded)


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    return "&".join(
        (method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalized_parameters(params)))
    )


def signature(base_string: str, consumer_secret: str, method: str = "HMAC-SHA256", token_secret: str = "") -> str:
    """base64(HMAC(consumer secret "&" token secret, base string)); one-legged: no token."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), HASHES[method]).digest()).decode()


def signed_url(method: str, url: str, params: Iterable[tuple[str, str]], *, consumer_key: str,
               consumer_secret: str, signature_method: str = "HMAC-SHA256",
               timestamp: int | None = None, nonce: str | None = None) -> str:
    """`url` (no query) with `params` and the oauth_* parameters, signed, as a query string."""
    if signature_method not in HASHES:
        raise ValueError(f"unsupported OAuth signature method {signature_method!r}: use one of {sorted(HASHES)}")
    signed = list(params) + [
        ("oauth_consumer_key", consumer_key),
        ("oauth_nonce", nonce or secrets.token_hex(16)),  # 32 characters, as WooCommerce advises
        ("oauth_signature_method", signature_method),
        ("oauth_timestamp", str(int(time.time()) if timestamp is None else timestamp)),
        ("oauth_version", "1.0"),
    ]
    base = signature_base_string(method, url, signed)
    signed.append(("oauth_signature", signature(base, consumer_secret, signature_method)))
    return f"{url}?{normalized_parameters(signed)}"
