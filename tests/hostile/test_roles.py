"""Who may call what, for every endpoint the URL conf has (walked, not listed: a new endpoint
is in the matrix the day it is added). Without a token or with a wrong one: 401, reads too;
with a token of a role the view does not let write: 403. `pim` writes the catalog and stock
(inventory's views), `ops` the channels, resyncs, reconciliations, catalog refreshes and
attribute mappings (channels' views), a merchandiser nothing. A refusal writes nothing."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from syncsvc.permissions import ROLES
from tests.factories import ChannelFactory, product_with_variants
from tests.hostile.conftest import role_token

pytestmark = pytest.mark.django_db
WRITES = ("post", "put", "patch", "delete")
SAMPLE = {"handle": "role", "sku": "ROLE-1", "change_id": "1", "event_type": "price.updated", "version": "1",
          "job_id": 1, "refresh_id": 1, "mapping_id": 1}
OWNER = {"inventory": ("pim",), "channels": ("ops",)}  # the app a view lives in -> who writes there


def _patterns(resolver: URLResolver, prefix: str = "", kwargs: tuple = ()):
    for pattern in resolver.url_patterns:
        names = tuple(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern), kwargs + names)
        elif isinstance(pattern, URLPattern) and pattern.name and "format" not in names:
            yield prefix + str(pattern.pattern), pattern, kwargs + names


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # a viewset: its method -> action map
    if actions:
        return sorted(actions)
    view = callback.cls
    return sorted(m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m))


def _endpoints():
    """(method, route, url name, kwarg names, view class) for every API endpoint."""
    found = []
    for route, pattern, kwargs in _patterns(get_resolver()):
        if not route.startswith("api/v1/") or not hasattr(pattern.callback, "cls"):
            continue
        if pattern.name in ("schema", "docs"):
            continue
        for method in _methods(pattern.callback):
            found.append((method, route, pattern.name, kwargs, pattern.callback.cls))
    return found


ENDPOINTS = _endpoints()
PUBLIC = [e for e in ENDPOINTS if not e[4].authentication_classes and e[4].permission_classes]
PRIVATE = [e for e in ENDPOINTS if e not in PUBLIC]
WRITE_ENDPOINTS = [e for e in PRIVATE if e[0] in WRITES]
REFUSED = [(role, e) for e in WRITE_ENDPOINTS for role in ROLES if role not in getattr(e[4], "write_roles", ())]
ALLOWED = [(role, e) for e in WRITE_ENDPOINTS for role in getattr(e[4], "write_roles", ())]


def _id(endpoint) -> str:
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>", lambda m: "{" + (m[1] or m[2]) + "}", endpoint[1])
    return f"{endpoint[0].upper()} /{route.replace('^', '').replace('$', '')}"


@pytest.fixture
def url(db):
    product_with_variants(handle="role", skus=["ROLE-1"], stock=3)
    channel = ChannelFactory(name="roles", kind="webhook", base_url="http://127.0.0.1:9/h", credentials={"secret": "s"})

    def build(endpoint) -> str:
        _, _, name, kwargs, _ = endpoint
        return reverse(name, kwargs={k: SAMPLE.get(k, channel.pk) for k in kwargs})

    return build


def _call(client: APIClient, method: str, path: str):
    return getattr(client, method)(path, {}, format="json") if method in WRITES else getattr(client, method)(path)


def test_the_matrix_covers_both_apps_writes_and_gives_merchandisers_no_write():
    owners = {e[4].__module__.split(".")[0] for e in WRITE_ENDPOINTS}
    assert owners == set(OWNER), owners
    assert len(WRITE_ENDPOINTS) >= 15, [_id(e) for e in WRITE_ENDPOINTS]
    for endpoint in WRITE_ENDPOINTS:
        view = endpoint[4]
        assert tuple(getattr(view, "write_roles", ())) == OWNER[view.__module__.split(".")[0]], (_id(endpoint), view)


@pytest.mark.parametrize("endpoint", PRIVATE, ids=[_id(e) for e in PRIVATE])
@pytest.mark.parametrize("token", ["none", "wrong", "malformed"])
def test_without_a_valid_token_every_endpoint_is_401_and_writes_nothing(url, snapshot, endpoint, token):
    # given
    client = APIClient()
    if token != "none":
        client.credentials(HTTP_AUTHORIZATION={"wrong": "Token 0123456789abcdef0123456789abcdef01234567",
                                               "malformed": "Token a b c"}[token])
    path = url(endpoint)
    before = snapshot.take()

    # when
    response = _call(client, endpoint[0], path)

    # then
    assert response.status_code == 401, (response.status_code, response.content[:200])
    assert set(response.json()) == {"detail", "errors"}
    assert not snapshot.changed(before, snapshot.take())


@pytest.mark.parametrize(("role", "endpoint"), REFUSED, ids=[f"{r} {_id(e)}" for r, e in REFUSED])
def test_a_token_of_a_role_that_may_not_write_there_is_403_and_writes_nothing(url, snapshot, role, endpoint):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {role_token(role)}")
    path = url(endpoint)
    before = snapshot.take()

    # when
    response = _call(client, endpoint[0], path)

    # then
    assert response.status_code == 403, (response.status_code, response.content[:200])
    assert response.json()["detail"] == "Your token's role may not do this."
    assert not snapshot.changed(before, snapshot.take())


@pytest.mark.parametrize(("role", "endpoint"), ALLOWED, ids=[f"{r} {_id(e)}" for r, e in ALLOWED])
def test_the_role_that_may_write_there_gets_past_the_permission_check(url, role, endpoint):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {role_token(role)}")

    response = _call(client, endpoint[0], url(endpoint))

    assert response.status_code not in (401, 403), (response.status_code, response.content[:200])


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads(url, role):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {role_token(role)}")

    response = client.get(reverse("sync-logs"))

    assert response.status_code == 200
