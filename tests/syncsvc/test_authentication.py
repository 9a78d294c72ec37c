"""API tokens remembered per process (syncsvc.authentication): a repeat request costs no token
or role query, and deleting a token or changing a user's roles takes effect at once here."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import api_client

pytestmark = pytest.mark.django_db

WRITE = ("/api/v1/inventory/adjustments/", {"sku": "NO-SUCH-SKU", "delta": 1, "reason": "receipt", "reference": "auth-1"})


def _auth_queries(client, path="/api/v1/channels/") -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return [q["sql"] for q in queries if "authtoken_token" in q["sql"] or "auth_group" in q["sql"]]


def test_a_token_seen_moments_ago_costs_no_token_or_role_query():
    client = api_client("pim")
    # when: the first request looks the token up, the second within the cache's life
    first = _auth_queries(client)
    second = _auth_queries(client)
    # then
    assert any("authtoken_token" in sql for sql in first)
    assert second == []


def test_a_deleted_token_is_refused_at_once():
    client = api_client("pim")
    assert client.get("/api/v1/channels/").status_code == 200
    # when
    Token.objects.all().delete()
    # then
    assert client.get("/api/v1/channels/").status_code == 401


def test_a_role_taken_away_is_refused_at_once():
    client = api_client("pim")
    path, body = WRITE
    assert client.post(path, body, format="json").status_code == 404  # allowed: refused for its unknown SKU
    user = Token.objects.get().user
    # when
    user.groups.remove(Group.objects.get(name="pim"))
    # then
    response = client.post(path, body, format="json")
    assert response.status_code == 403, response.content


def test_a_wrong_token_is_never_remembered():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/channels/").status_code == 401
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/channels/").status_code == 401
    assert any("authtoken_token" in q["sql"] for q in queries)


def test_with_the_cache_off_every_request_looks_its_token_up(settings):
    settings.SYNCSVC = {**settings.SYNCSVC, "AUTH_CACHE_S": 0.0}
    client = api_client("pim")
    _auth_queries(client)
    assert any("authtoken_token" in sql for sql in _auth_queries(client))
