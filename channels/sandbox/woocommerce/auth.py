"""WooCommerce REST API key authentication, as `WC_REST_Authentication` does it.

Over HTTPS WooCommerce takes the key and secret as Basic auth or as `consumer_key` /
`consumer_secret` query parameters; over plain HTTP it requires OAuth 1.0a "one-legged"
signatures (RFC 5849 with no token: the signing key is the consumer secret and `&`).
The sandbox itself is plain HTTP, yet it accepts all three: OAuth signatures are verified
properly, and Basic / query credentials are taken as if a TLS-terminating proxy sat in front
(how most WooCommerce hosts run).

Order of checks, as WooCommerce: the key, then the signature, then the 15-minute timestamp
window, then the nonce (remembered per key for the window). A Basic or query key that is
unknown is not an error by itself: the request goes on unauthenticated and the route's
permission check answers 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..messages import Request
from .errors import WpError, authentication_error

TIMESTAMP_WINDOW_S = 15 * 60
REQUIRED_OAUTH_PARAMETERS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)
SIGNATURE_METHODS = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
BASIC_REALM = (
    'Basic realm="WooCommerce API. Use a consumer key in the username field and a consumer secret in the password'
    ' field."'
)
OAUTH_HEADER_PARAMETER = re.compile(r'(oauth_[a-z_-]*)=(?:"([^"]*)"|([^,]*))')
# Parameters that carry credentials: never echoed back in pagination links.
CREDENTIAL_PARAMETERS = frozenset({"consumer_key", "consumer_secret", *REQUIRED_OAUTH_PARAMETERS, "oauth_version"})


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str


@dataclass(frozen=True)
class AuthResult:
    """`method` is how the caller authenticated: oauth1, basic, query; none (anonymous) or
    unchecked (the store has no API key configured). `error` is set when credentials were
    given and are wrong."""

    method: str
    error: WpError | None = None

    @property
    def authenticated(self) -> bool:
        return self.method in ("oauth1", "basic", "query")


def percent_encode(value: str) -> str:
    """RFC 3986 unreserved characters stay, everything else is %XX (RFC 5849 section 3.6)."""
    return quote(value, safe="~")


def signature_base_string(method: str, base_uri: str, parameters: list[tuple[str, str]]) -> str:
    """RFC 5849 section 3.4.1: method, base string URI and the normalized parameters."""
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in parameters)
    normalized = "&".join(f"{name}={value}" for name, value in encoded)
    return "&".join((method.upper(), percent_encode(base_uri), percent_encode(normalized)))


def sign(base_string: str, consumer_secret: str, signature_method: str) -> str:
    """HMAC over the base string with `consumer secret & empty token secret`, base64."""
    key = f"{percent_encode(consumer_secret)}&"
    digest = hmac.new(key.encode(), base_string.encode(), SIGNATURE_METHODS[signature_method]).digest()
    return base64.b64encode(digest).decode()


def base_string_uri(request: Request) -> str:
    """Scheme, host and path as the client addressed us (RFC 5849 section 3.4.1.2)."""
    scheme = (request.header("X-Forwarded-Proto") or "http").split(",")[0].strip().lower()
    host = (request.header("Host") or "localhost").strip().lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return f"{scheme}://{host}{urlsplit(request.target).path}"


def query_parameters(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(request.target).query, keep_blank_values=True)


class Authenticator:
    """Checks one store's requests against its configured key; remembers OAuth nonces."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nonces: dict[str, dict[str, float]] = {}

    def authenticate(self, request: Request, credentials: Credentials | None, now: float) -> AuthResult:
        if credentials is None:
            return AuthResult("unchecked")
        query = query_parameters(request)
        plain = self._plain_credentials(request, query)
        if plain is not None:
            method, key, secret = plain
            if key == credentials.consumer_key:
                if hmac.compare_digest(secret.encode(), credentials.consumer_secret.encode()):
                    return AuthResult(method)
                return AuthResult(
                    method,
                    authentication_error("Consumer secret is invalid.", headers={"WWW-Authenticate": BASIC_REALM}),
                )
        return self._oauth(request, query, credentials, now)

    @staticmethod
    def _plain_credentials(request: Request, query: list[tuple[str, str]]) -> tuple[str, str, str] | None:
        values = dict(query)
        if values.get("consumer_key") and values.get("consumer_secret"):
            return "query", values["consumer_key"], values["consumer_secret"]
        authorization = (request.header("Authorization") or "").strip()
        if authorization[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            if user and password:
                return "basic", user, password
        return None

    def _oauth(
        self, request: Request, query: list[tuple[str, str]], credentials: Credentials, now: float
    ) -> AuthResult:
        parameters = query + self._header_parameters(request)
        values = dict(parameters)
        missing = [name for name in REQUIRED_OAUTH_PARAMETERS if not values.get(name)]
        if len(missing) == len(REQUIRED_OAUTH_PARAMETERS):
            return AuthResult("none")  # not even trying OAuth: an anonymous request
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            return AuthResult(
                "oauth1",
                WpError(
                    401,
                    "woocommerce_rest_authentication_missing_parameter",
                    f"Missing OAuth {noun} {', '.join(missing)}",
                ),
            )
        if values["oauth_consumer_key"] != credentials.consumer_key:
            return AuthResult("oauth1", authentication_error("Consumer key is invalid."))
        signature_method = values["oauth_signature_method"]
        if signature_method not in SIGNATURE_METHODS:
            return AuthResult("oauth1", authentication_error("Invalid signature - signature method is invalid."))
        # A query string decodes "+" to a space; base64 signatures contain "+" (WooCommerce
        # undoes the same damage).
        provided = values["oauth_signature"].replace(" ", "+")
        signed = [(name, value) for name, value in parameters if name not in ("oauth_signature", "realm")]
        expected = sign(
            signature_base_string(request.method, base_string_uri(request), signed),
            credentials.consumer_secret,
            signature_method,
        )
        if not hmac.compare_digest(expected.encode(), provided.encode()):
            return AuthResult("oauth1", authentication_error("Invalid signature - provided signature does not match."))
        try:
            timestamp = int(values["oauth_timestamp"])
        except ValueError:
            return AuthResult("oauth1", authentication_error("Invalid timestamp."))
        if abs(now - timestamp) > TIMESTAMP_WINDOW_S:
            return AuthResult("oauth1", authentication_error("Invalid timestamp."))
        if not self._use_nonce(credentials.consumer_key, values["oauth_nonce"], now):
            return AuthResult("oauth1", authentication_error("Invalid nonce - nonce has already been used."))
        return AuthResult("oauth1")

    @staticmethod
    def _header_parameters(request: Request) -> list[tuple[str, str]]:
        """`Authorization: OAuth oauth_consumer_key="...", ...` (WooCommerce 3.0+)."""
        authorization = (request.header("Authorization") or "").strip()
        if authorization[:6].lower() != "oauth ":
            return []
        return [
            (name, unquote(quoted if quoted else bare.strip()))
            for name, quoted, bare in OAUTH_HEADER_PARAMETER.findall(authorization[6:])
        ]

    def _use_nonce(self, consumer_key: str, nonce: str, now: float) -> bool:
        """Record the nonce; False when it was already used within the window."""
        with self._lock:
            used = self._nonces.setdefault(consumer_key, {})
            for old_nonce, used_at in list(used.items()):
                if used_at < now - TIMESTAMP_WINDOW_S:
                    del used[old_nonce]
            if nonce in used:
                return False
            used[nonce] = now
            return True
