"""The WooCommerce adapter against a stub shop (no database, no sandbox).

The stub checks every request as WooCommerce would: the OAuth 1.0a signature recomputed from
the wire (plain http), and each batch entry against the argument schema WooCommerce publishes
for the batch route (`woocommerce-wc-v3-index.routes.json`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from decimal import Decimal
from functools import lru_cache
from urllib.parse import quote

import jsonschema
import pytest

from channels.adapters import oauth1
from channels.adapters.base import ChannelThrottled, Outcome, PushItem
from channels.adapters.registry import adapter_class
from channels.adapters.woocommerce import WooCommerceAdapter

from .rest_fakes import FakeContext, Sent, config, install, reply

from tests.support.reference import reference_file

ROUTES = reference_file("specs/woocommerce-wc-v3-index.routes.json")
BASE_URL = "http://shop.test:8080/woocommerce/mystore"
KEY, SECRET = "ck_test", "cs_test"
_JSON_TYPES = {"date-time": "string", "array": "array", "object": "object", "integer": "integer",
               "number": "number", "boolean": "boolean", "string": "string"}


@lru_cache(maxsize=None)
def entry_schema(route: str) -> dict:
    """A JSON Schema for one `update` entry, from the route's documented arguments."""
    endpoint = json.loads(ROUTES.read_text())["routes"][route]["endpoints"][0]
    properties = {"id": {"type": "integer"}}
    for name, arg in endpoint["args"].items():
        types = arg.get("type")
        types = types if isinstance(types, list) else [types]
        schema = {"type": [_JSON_TYPES.get(t, "string") for t in types if t]}
        if "enum" in arg:
            schema["enum"] = arg["enum"]
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": ["id"], "additionalProperties": False}


def rfc5849_signature(method: str, url: str, pairs: list[tuple[str, str]], secret: str, algorithm: str) -> str:
    """The server's side of the signature, written from RFC 5849 without the adapter's code."""
    def enc(value: str) -> str:
        return quote(value, safe="-._~")

    params = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in pairs if k != "oauth_signature"))
    base = f"{method}&{enc(url)}&{enc(params)}"
    digest = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}[algorithm]
    return base64.b64encode(hmac.new(f"{secret}&".encode(), base.encode(), digest).digest()).decode()


class FakeWoo:
    """A WooCommerce shop: products by SKU, batch routes, a lookup that splits commas."""

    def __init__(self, products: dict[str, dict] | None = None, *, batch_limit: int = 100, comma_skus: bool = True):
        self.products = products or {}
        self.batch_limit = batch_limit
        self.comma_skus = comma_skus
        self.faults: list = []  # canned answers served before the shop's own
        self.item_errors: dict[int, dict] = {}

    def __call__(self, sent: Sent):
        if sent.url.startswith("http://"):
            query = sent.query
            url = sent.url.split("?")[0].replace(":80/", "/")
            expected = rfc5849_signature(sent.method, url, sent.query_pairs, SECRET, query["oauth_signature_method"])
            assert query["oauth_consumer_key"] == KEY and query["oauth_signature"] == expected, "bad signature"
        if self.faults:
            return self.faults.pop(0)
        path = sent.path.split("/wp-json/wc/v3", 1)[1]
        if sent.method == "GET" and path == "/products":
            wanted = sent.query["sku"].split(",") if self.comma_skus else [sent.query["sku"]]
            return reply(200, [p for p in self.products.values() if p["sku"] in wanted][: int(sent.query["per_page"])])
        match = re.fullmatch(r"/products(?:/(\d+)/variations)?/batch", path)
        assert sent.method == "POST" and match, f"unexpected {sent.method} {path}"
        updates = sent.json()["update"]
        route = "/wc/v3/products/(?P<product_id>[\\d]+)/variations/batch" if match.group(1) else "/wc/v3/products/batch"
        for update in updates:
            jsonschema.validate(update, entry_schema(route))
        if len(updates) > self.batch_limit:
            return reply(413, {"code": "woocommerce_rest_request_entity_too_large",
                               "message": f"Unable to accept more than {self.batch_limit} items for this request.",
                               "data": {"status": 413}})
        answers = []
        for update in updates:
            if update["id"] in self.item_errors:
                answers.append({"id": update["id"], "error": self.item_errors[update["id"]]})
                continue
            product = next(p for p in self.products.values() if p["id"] == update["id"])
            product.update({k: v for k, v in update.items() if k != "id"})
            answers.append(dict(product))
        return reply(200, {"update": answers})


def product(product_id: int, sku: str, *, parent_id: int = 0, price: str = "1.00", stock: int | None = 0) -> dict:
    return {"id": product_id, "sku": sku, "type": "variation" if parent_id else "simple", "parent_id": parent_id,
            "regular_price": price, "manage_stock": stock is not None, "stock_quantity": stock}


def adapter(context=None, *, base_url=BASE_URL, settings=None) -> WooCommerceAdapter:
    return WooCommerceAdapter(config("woocommerce", base_url, {"consumer_key": KEY, "consumer_secret": SECRET}, settings),
                              context or FakeContext())


def price(sku, value, **ids) -> PushItem:
    return PushItem(sku=sku, aspect="price", version=1, price=Decimal(value), external_ids=ids)


def stock(sku, available, **ids) -> PushItem:
    return PushItem(sku=sku, aspect="inventory", version=1, available=available, external_ids=ids)


def outcomes(results):
    return {(r.sku, r.aspect): (r.outcome, r.code) for r in results}


# -- OAuth 1.0a --------------------------------------------------------------------------------


def test_signature_matches_published_vectors():
    # RFC 5849 3.4.1.3.2: the normalized parameters of its worked example
    pairs = [("b5", "=%3D"), ("a3", "a"), ("c@", ""), ("a2", "r b"), ("oauth_consumer_key", "9djdj82h48djs9d2"),
             ("oauth_token", "kkk9d7dh3k39sjv7"), ("oauth_signature_method", "HMAC-SHA1"),
             ("oauth_timestamp", "137131201"), ("oauth_nonce", "7d8f3e4a"), ("c2", ""), ("a3", "2 q")]
    assert oauth1.normalized_parameters(pairs) == (
        "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2"
        "&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
    )
    assert oauth1.base_string_uri("http://EXAMPLE.COM:80/r%20v/X?id=123") == "http://example.com/r%20v/X"
    # Twitter's documented "Creating a signature" example (HMAC-SHA1, with a token)
    twitter = [("include_entities", "true"), ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
               ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"), ("oauth_signature_method", "HMAC-SHA1"),
               ("oauth_timestamp", "1318622958"), ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
               ("oauth_version", "1.0"), ("status", "Hello Ladies + Gentlemen, a signed OAuth request!")]
    base = oauth1.signature_base_string("POST", "https://api.twitter.com/1.1/statuses/update.json", twitter)
    assert oauth1.signature(base, "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "HMAC-SHA1",
                            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE") == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


def test_one_legged_signature_matches_a_hand_built_base_string():
    # given: fixed nonce and timestamp
    url = oauth1.signed_url("GET", "http://shop.test/wp-json/wc/v3/products", [("sku", "A,B"), ("per_page", "100")],
                            consumer_key="ck", consumer_secret="cs", timestamp=1700000000, nonce="n0nce")

    # then: the base string written out by hand, HMAC-SHA256 keyed "cs&"
    base = ("GET&http%3A%2F%2Fshop.test%2Fwp-json%2Fwc%2Fv3%2Fproducts&oauth_consumer_key%3Dck%26oauth_nonce%3Dn0nce"
            "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1700000000%26oauth_version%3D1.0"
            "%26per_page%3D100%26sku%3DA%252CB")
    expected = base64.b64encode(hmac.new(b"cs&", base.encode(), hashlib.sha256).digest()).decode()
    assert url == (f"http://shop.test/wp-json/wc/v3/products?oauth_consumer_key=ck&oauth_nonce=n0nce"
                   f"&oauth_signature={quote(expected, safe='')}&oauth_signature_method=HMAC-SHA256"
                   f"&oauth_timestamp=1700000000&oauth_version=1.0&per_page=100&sku=A%2CB")


def test_https_uses_basic_auth_and_no_oauth(monkeypatch):
    # given
    shop = FakeWoo({"A": product(11, "A")})
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter(base_url="https://shop.test/store").push([price("A", "2.00", product_id=11)])

    # then
    assert results[0].ok
    sent = session.sent[0]
    assert sent.url == "https://shop.test/store/wp-json/wc/v3/products/batch"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


def test_the_stub_shop_refuses_a_wrong_signature(monkeypatch):
    # given: the right key with the wrong secret
    install(monkeypatch, 9001, FakeWoo({"A": product(11, "A")}))
    wrong = WooCommerceAdapter(config("woocommerce", BASE_URL, {"consumer_key": KEY, "consumer_secret": "cs_wrong"}), FakeContext())

    # then: the stub's check is a real one
    with pytest.raises(AssertionError, match="bad signature"):
        wrong.push([price("A", "1", product_id=11)])


def test_sha1_is_a_setting(monkeypatch):
    shop = FakeWoo({"A": product(11, "A")})
    session = install(monkeypatch, 9001, shop)

    adapter(settings={"oauth_signature_method": "HMAC-SHA1"}).push([price("A", "2.00", product_id=11)])

    assert session.sent[0].query["oauth_signature_method"] == "HMAC-SHA1"  # and the stub verified it


# -- push ---------------------------------------------------------------------------------------


def test_resolves_skus_then_sends_one_entry_per_sku_per_parent(monkeypatch):
    # given: a simple product and a variation, neither resolved before
    shop = FakeWoo({"A": product(11, "A"), "V": product(21, "V", parent_id=20)})
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter().push([price("A", "12.5"), stock("A", 4), price("V", "3"), stock("V", 0)])

    # then: one lookup, one batch per route, price and stock merged per SKU
    assert [(s.method, s.path.split("/wc/v3")[1]) for s in session.sent] == [
        ("GET", "/products"), ("POST", "/products/batch"), ("POST", "/products/20/variations/batch"),
    ]
    assert session.sent[0].query["sku"] == "A,V" and session.sent[0].query["per_page"] == "100"
    assert session.sent[1].json() == {"update": [{"id": 11, "regular_price": "12.50", "manage_stock": True, "stock_quantity": 4}]}
    assert session.sent[2].json() == {"update": [{"id": 21, "regular_price": "3.00", "manage_stock": True, "stock_quantity": 0}]}
    assert session.sent[1].headers["Content-Type"] == "application/json"
    assert all(r.ok for r in results)
    ids = {r.sku: r.external_ids for r in results}
    assert ids == {"A": {"product_id": 11}, "V": {"product_id": 21, "parent_id": 20}}
    assert shop.products["A"]["regular_price"] == "12.50" and shop.products["V"]["stock_quantity"] == 0


def test_known_ids_skip_the_lookup(monkeypatch):
    shop = FakeWoo({"A": product(11, "A")})
    session = install(monkeypatch, 9001, shop)

    results = adapter().push([price("A", "1.99", product_id=11)])

    assert [s.path.split("/wc/v3")[1] for s in session.sent] == ["/products/batch"]
    assert results[0].ok and results[0].external_ids is None


def test_a_sku_the_shop_lacks_is_unlisted_and_the_others_go(monkeypatch):
    # given: an older shop that takes one SKU per lookup
    shop = FakeWoo({"A": product(11, "A")}, comma_skus=False)
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter().push([price("A", "5"), price("GHOST", "5")])

    # then: the comma lookup found nothing, each SKU was asked alone, only GHOST fails
    assert [s.query.get("sku") for s in session.sent if s.method == "GET"] == ["A,GHOST", "A", "GHOST"]
    by_sku = {r.sku: r for r in results}
    assert by_sku["A"].ok
    assert (by_sku["GHOST"].outcome, by_sku["GHOST"].code, by_sku["GHOST"].listed) == (Outcome.PERMANENT, "unlisted", False)


def test_per_item_errors_fail_only_their_sku(monkeypatch):
    # given
    shop = FakeWoo({"A": product(11, "A"), "B": product(12, "B"), "C": product(13, "C")})
    shop.item_errors[12] = {"code": "woocommerce_rest_invalid_sku", "message": "Invalid or duplicated SKU.", "data": {"status": 400}}
    shop.item_errors[13] = {"code": "db_error", "message": "Deadlock", "data": {"status": 500}}
    install(monkeypatch, 9001, shop)

    # when
    results = adapter().push([price("A", "1", product_id=11), price("B", "1", product_id=12), price("C", "1", product_id=13)])

    # then
    assert outcomes(results) == {
        ("A", "price"): (Outcome.OK, ""),
        ("B", "price"): (Outcome.PERMANENT, "woocommerce_rest_invalid_sku"),
        ("C", "price"): (Outcome.RETRY, "db_error"),
    }
    assert results[1].message == "Invalid or duplicated SKU."


def test_a_413_halves_the_batch_until_the_shop_takes_it(monkeypatch):
    # given: a shop whose limit is 2 entries, and 5 SKUs
    shop = FakeWoo({f"S{n}": product(n, f"S{n}") for n in range(1, 6)}, batch_limit=2)
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter().push([price(f"S{n}", "4", product_id=n) for n in range(1, 6)])

    # then: 5 refused -> 2 taken + 3 refused -> 1 + 2 taken
    sizes = [len(s.json()["update"]) for s in session.sent]
    assert sizes == [5, 2, 3, 1, 2]
    assert all(r.ok for r in results)


def test_batch_limit_setting_caps_entries_per_call(monkeypatch):
    shop = FakeWoo({f"S{n}": product(n, f"S{n}") for n in range(1, 6)})
    session = install(monkeypatch, 9001, shop)

    adapter(settings={"batch_limit": 2}).push([price(f"S{n}", "4", product_id=n) for n in range(1, 6)])

    assert [len(s.json()["update"]) for s in session.sent] == [2, 2, 1]


def test_a_429_pauses_everyone_and_throttles_what_was_not_delivered(monkeypatch):
    # given
    shop = FakeWoo({"A": product(11, "A"), "V": product(21, "V", parent_id=20)})
    shop.faults.append(reply(429, {"code": "too_many", "message": "Slow down", "data": {"status": 429}}, headers={"Retry-After": "7"}))
    context = FakeContext()
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter(context).push([price("A", "1", product_id=11), price("V", "1", product_id=21, parent_id=20)])

    # then: nothing more sent after the 429
    assert len(session.sent) == 1
    assert context.pauses == [(7.0, "default")]
    assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.THROTTLED, 7.0)}


def test_ids_found_before_a_throttle_are_kept(monkeypatch):
    # given: the lookup succeeds, the batch is throttled
    shop = FakeWoo({"A": product(11, "A")})
    context = FakeContext(waits={"default": [0.0, 3.0]})
    install(monkeypatch, 9001, shop)

    # when
    result = adapter(context).push([price("A", "1")])[0]

    # then: no need to look A up again next time
    assert (result.outcome, result.retry_after, result.external_ids) == (Outcome.THROTTLED, 3.0, {"product_id": 11})


def test_an_empty_bucket_sends_nothing(monkeypatch):
    context = FakeContext(waits={"default": [2.5]})
    session = install(monkeypatch, 9001, FakeWoo({"A": product(11, "A")}))

    results = adapter(context).push([price("A", "1", product_id=11)])

    assert session.sent == []
    assert (results[0].outcome, results[0].retry_after) == (Outcome.THROTTLED, 2.5)


def test_a_401_is_resent_once_with_a_fresh_signature_then_auth(monkeypatch):
    # given: one stray 401
    shop = FakeWoo({"A": product(11, "A")})
    refused = {"code": "woocommerce_rest_authentication_error", "message": "Invalid signature", "data": {"status": 401}}
    shop.faults.append(reply(401, refused))
    session = install(monkeypatch, 9001, shop)

    # when / then: delivered on the second try, with a new nonce
    assert adapter().push([price("A", "1", product_id=11)])[0].ok
    assert session.sent[0].query["oauth_nonce"] != session.sent[1].query["oauth_nonce"]

    # given: refused twice
    shop.faults += [reply(401, refused), reply(401, refused)]

    # when
    result = adapter().push([price("A", "1", product_id=11)])[0]

    # then
    assert (result.outcome, result.code) == (Outcome.AUTH, "woocommerce_rest_authentication_error")


def test_5xx_and_network_errors_are_retried(monkeypatch):
    shop = FakeWoo({"A": product(11, "A")})
    shop.faults.append(reply(503, content=b"<html>busy</html>", headers={"Content-Type": "text/html", "Retry-After": "3"}))
    install(monkeypatch, 9001, shop)

    result = adapter().push([price("A", "1", product_id=11)])[0]
    assert (result.outcome, result.code, result.retry_after) == (Outcome.RETRY, "http_503", 3.0)

    import requests

    def down(sent):
        raise requests.ConnectionError("refused")

    install(monkeypatch, 9001, down)
    result = adapter().push([price("A", "1", product_id=11)])[0]
    assert (result.outcome, result.code) == (Outcome.RETRY, "network_error")


def test_a_whole_batch_refused_with_400_is_permanent(monkeypatch):
    shop = FakeWoo({"A": product(11, "A")})
    shop.faults.append(reply(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): update", "data": {"status": 400}}))
    install(monkeypatch, 9001, shop)

    result = adapter().push([price("A", "1", product_id=11)])[0]

    assert (result.outcome, result.code, result.message) == (Outcome.PERMANENT, "rest_invalid_param", "Invalid parameter(s): update")


# -- fetch --------------------------------------------------------------------------------------


def test_fetch_reads_price_stock_and_ids(monkeypatch):
    shop = FakeWoo({"A": product(11, "A", price="7.25", stock=3), "V": product(21, "V", parent_id=20, price="", stock=None)})
    install(monkeypatch, 9001, shop)

    live = adapter().fetch(["A", "V", "GHOST"])

    assert (live["A"].listed, live["A"].price, live["A"].available, live["A"].external_ids) == (True, Decimal("7.25"), 3, {"product_id": 11})
    assert (live["V"].price, live["V"].available, live["V"].external_ids) == (None, None, {"product_id": 21, "parent_id": 20})
    assert live["GHOST"].listed is False


def test_fetch_throttled_raises_channel_throttled(monkeypatch):
    install(monkeypatch, 9001, FakeWoo())
    with pytest.raises(ChannelThrottled) as raised:
        adapter(FakeContext(waits={"default": [4.0]})).fetch(["A"])
    assert raised.value.retry_after == 4.0


def test_fetch_reserves_its_lookups_and_gives_back_what_it_did_not_use(monkeypatch):
    # given: 150 SKUs, two lookups planned; the shop has them all, so no per-SKU fallback
    shop = FakeWoo({f"S{n}": product(n, f"S{n}") for n in range(1, 151)})
    context = FakeContext()
    install(monkeypatch, 9001, shop)

    # when
    live = adapter(context).fetch([f"S{n}" for n in range(1, 151)])

    # then
    assert all(value.listed for value in live.values())
    assert context.costs == [("default", 2)]
    assert not any(o["refund"] for o in context.observed)


def test_registered_with_its_defaults():
    cls = adapter_class("woocommerce")
    assert cls is WooCommerceAdapter
    assert cls.bucket_defaults({}) == {"default": (5.0, 10.0)}
    assert cls.validate_credentials({"consumer_key": "ck"}) == {"consumer_secret": "required for a woocommerce channel"}
