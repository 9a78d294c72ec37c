"""Values the fuzzer reaches only by luck, sent on purpose: NUL characters (PostgreSQL
refuses them in text and JSON), numbers beyond any column, ids beyond bigint, strings longer
than any column, JSON nested deeper than the parser recurses. Each is a 4xx in the error
shape, never a 5xx, and writes nothing."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import ChannelFactory, product_with_variants
from tests.hostile.conftest import role_token

pytestmark = pytest.mark.django_db
HUGE = 10**30
BIG_ID = "99999999999999999999"
NUL = "\u0000"

REQUESTS = [
    ("post", "/api/v1/products/", {"handle": "n1", "title": "t", "attributes": {"a": f"x{NUL}y"},
                                   "variants": [{"sku": "N1", "price": "1.00"}]}),
    ("post", "/api/v1/products/", {"handle": "n1", "title": "t", "variants": [{"sku": "N1", "price": "1.00",
                                                                              "attributes": {f"k{NUL}": "v"}}]}),
    ("patch", "/api/v1/variants/FUZZ-1/", {"attributes": {"a": NUL}}),
    ("patch", "/api/v1/products/fuzz/", {"attributes": {f"a{NUL}": 1}}),
    ("get", "/api/v1/variants/a%00/", None),
    ("get", "/api/v1/inventory/a%00/", None),
    ("get", "/api/v1/products/a%00/", None),
    ("get", "/api/v1/sync-logs/?sku=a%00b", None),
    ("get", "/api/v1/alerts/?channel=%C2%B2", None),
    ("get", "/api/v1/alerts/?kind=%00", None),
    ("post", "/api/v1/prices/bulk/", [{"sku": "FUZZ-1", "price": "1e400"}]),
    ("post", "/api/v1/prices/bulk/", [{"sku": f"FUZZ-1{NUL}", "price": "1.00"}]),
    ("post", "/api/v1/prices/bulk/", [{"sku": "FUZZ-1", "price": "1.00", "changed_at": "2020-13-01T00:00:00Z"}]),
    ("post", "/api/v1/prices/bulk/", [{"sku": "FUZZ-1", "price": "1.00", "changed_at": "0001-01-01T00:00:00+05:00"}]),
    ("post", "/api/v1/prices/bulk/", [{"sku": "FUZZ-1", "price": "1.00", "changed_at": "2020-01-01T00:00:00+24:00"}]),
    ("post", "/api/v1/inventory/adjustments/", {"sku": "FUZZ-1", "delta": HUGE, "reason": "receipt", "reference": "r"}),
    ("post", "/api/v1/inventory/adjustments/", {"sku": f"FUZZ-1{NUL}", "delta": 1, "reason": "receipt", "reference": "r"}),
    ("post", "/api/v1/inventory/counts/", {"sku": "FUZZ-1", "on_hand": HUGE, "reference": "r2"}),
    ("patch", "/api/v1/channels/{channel}/", {"settings": {"a": NUL}}),
    ("patch", "/api/v1/channels/{channel}/", {"credentials": {"secret": NUL}}),
    ("patch", "/api/v1/channels/{channel}/", {"safety_stock": HUGE}),
    ("patch", "/api/v1/channels/{channel}/", {"name": "x" * 5000}),
    ("post", "/api/v1/channels/{channel}/resync/", {"skus": [f"a{NUL}"]}),
    ("post", "/api/v1/channels/{channel}/resync/", {"skus": ["x" * 5000]}),
    ("get", "/api/v1/channels/{channel}/resync/" + BIG_ID + "/", None),
    ("get", "/api/v1/channels/{channel}/catalog-refresh/" + BIG_ID + "/", None),
    ("get", "/api/v1/channels/{channel}/attribute-mappings/" + BIG_ID + "/", None),
    ("get", "/api/v1/changes/99999999999999999/trace/", None),
    ("get", "/api/v1/channels/{channel}/listings/?status=%00", None),
    ("get", f"/api/v1/channels/{BIG_ID}/", None),
    ("get", "/api/v1/incidents/?open=%00", None),
    ("get", "/api/v1/sync-logs/?limit=" + BIG_ID * 2, None),
    ("get", "/api/v1/products/?limit=" + BIG_ID * 2 + "&offset=" + BIG_ID * 2, None),
    ("get", f"/api/v1/sync-logs/?channel={BIG_ID}", None),
    ("get", f"/api/v1/alerts/?channel={BIG_ID}", None),
]


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture
def client() -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {role_token('pim', 'ops')}")
    return client


@pytest.fixture
def channel(db):
    product_with_variants(handle="fuzz", skus=["FUZZ-1"], stock=5)
    return ChannelFactory(name="values", kind="webhook", base_url="http://127.0.0.1:9/h", credentials={"secret": "s"})


@pytest.mark.parametrize(("method", "url", "body"), REQUESTS, ids=[f"{m} {u[:60]} {str(b)[:40]}" for m, u, b in REQUESTS])
def test_a_hostile_value_is_a_4xx_that_writes_nothing(client, channel, snapshot, method, url, body):
    # given
    url = url.format(channel=channel.pk)
    before = snapshot.take()

    # when
    response = getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)

    # then: a read may answer an empty page (a filter naming nothing); never a 5xx
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if method != "get" or response.status_code >= 400:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        assert set(response.json()) == {"detail", "errors"}, response.content[:300]
        assert not snapshot.changed(before, snapshot.take())


@pytest.mark.parametrize("url", ["/api/v1/products/", "/api/v1/prices/bulk/", "/api/v1/channels/"])
def test_json_nested_ten_thousand_levels_deep_is_a_400(client, channel, snapshot, url):
    # given
    before = snapshot.take()

    # when
    response = client.post(url, _deep(10_000), content_type="application/json")

    # then
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "JSON" in response.json()["detail"]
    assert not snapshot.changed(before, snapshot.take())
