"""The Magento adapter against a stub store (no database, no sandbox).

Every body the adapter sends is validated against the body parameter of its path in the
swagger Magento 2.4.8 generates (`magento-2.4.8-rest-all-schema.swagger.json`).
"""
from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache

import jsonschema
import pytest
import requests

from channels.adapters.base import ChannelThrottled, Outcome, PushItem
from channels.adapters.magento import MagentoAdapter, render, skus_named
from channels.adapters.registry import adapter_class

from .rest_fakes import FakeContext, Sent, config, install, reply

from tests.support.reference import reference_file

SWAGGER = reference_file("specs/magento-2.4.8-rest-all-schema.swagger.json")
BASE_URL = "http://store.test/magento/mystore"
ADMIN = {"username": "syncsvc", "password": "pass1"}


@lru_cache(maxsize=1)
def swagger() -> dict:
    return json.loads(SWAGGER.read_text())


def body_errors(path: str, method: str, body) -> list[str]:
    """What the swagger says is wrong with a request body for `method path` (empty when valid)."""
    operation = swagger()["paths"][path][method]
    schema = next(p["schema"] for p in operation["parameters"] if p["in"] == "body")
    validator = jsonschema.Draft4Validator({**schema, "definitions": swagger()["definitions"]})
    return [error.message for error in validator.iter_errors(body)]


class FakeMagento:
    """A Magento store: admin tokens, base prices, MSI source items at the "default" source."""

    def __init__(self, items: dict[str, tuple[float, int]] | None = None, *, failure_shape: str = "dict"):
        self.items = {sku: {"price": p, "quantity": q} for sku, (p, q) in (items or {}).items()}
        self.failure_shape = failure_shape
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.faults: list = []
        self.msi_names_sku = True

    def expire_tokens(self):
        self.valid_tokens.clear()

    def __call__(self, sent: Sent):
        path = sent.path.split("/magento/mystore", 1)[1]
        if path == "/rest/V1/integration/admin/token":
            assert sent.method == "POST" and not body_errors("/V1/integration/admin/token", "post", sent.json())
            if sent.json() != ADMIN:
                return reply(401, {"message": "The account sign-in was incorrect or your account is disabled temporarily."})
            self.tokens_issued += 1
            token = f"admintoken{self.tokens_issued}"
            self.valid_tokens.add(token)
            return reply(200, token)
        if self.faults:
            return self.faults.pop(0)
        token = sent.headers.get("Authorization", "").removeprefix("Bearer ")
        if token != "integration-token" and token not in self.valid_tokens:
            return reply(401, {"message": "The consumer isn't authorized to access %resources.",
                               "parameters": {"resources": "Magento_Catalog::products"}})
        assert path.startswith("/rest/all/V1/"), path
        route = path.removeprefix("/rest/all")
        if sent.method == "POST":
            errors = body_errors(route, "post", sent.json())
            assert not errors, errors
        return getattr(self, {
            ("POST", "/V1/products/base-prices"): "prices",
            ("POST", "/V1/inventory/source-items"): "source_items",
            ("POST", "/V1/products/base-prices-information"): "prices_information",
            ("GET", "/V1/inventory/source-items"): "source_items_search",
        }[(sent.method, route)])(sent)

    def prices(self, sent):
        failures = []
        for row in sent.json()["prices"]:
            if row["sku"] not in self.items:
                if self.failure_shape == "list":  # positional placeholders
                    failures.append({"message": "Invalid attribute SKU = %1. Row ID: SKU = %1, Store ID: %2.",
                                     "parameters": [row["sku"], str(row["store_id"])]})
                else:
                    failures.append({"message": "Invalid attribute SKU = %SKU. Row ID: SKU = %SKU, Store ID: %storeId.",
                                     "parameters": {"SKU": row["sku"], "storeId": str(row["store_id"])}})
            else:
                self.items[row["sku"]]["price"] = row["price"]
        return reply(200, failures)

    def source_items(self, sent):
        rows = sent.json()["sourceItems"]
        unknown = [row["sku"] for row in rows if row["sku"] not in self.items]
        if unknown:  # MSI validates the batch as a whole and saves nothing
            if self.msi_names_sku:
                return reply(400, {"message": "Validation Failed", "errors": [
                    {"message": 'Product with SKU "%sku" does not exist.', "parameters": {"sku": sku}} for sku in unknown]})
            return reply(400, {"message": "Validation Failed", "errors": [{"message": "Could not save Source Item", "parameters": []}]})
        for row in rows:
            self.items[row["sku"]]["quantity"] = row["quantity"]
        return reply(200, [])

    def prices_information(self, sent):
        skus = sent.json()["skus"]
        missing = [sku for sku in skus if sku not in self.items]
        if missing:
            return reply(404, {"message": "Requested products don't exist: %sku", "parameters": {"sku": ",".join(missing)}})
        return reply(200, [{"sku": sku, "price": self.items[sku]["price"], "store_id": 0} for sku in skus])

    def source_items_search(self, sent):
        query = sent.query
        prefix = "searchCriteria[filter_groups][0][filters][0]"
        assert (query[f"{prefix}[field]"], query[f"{prefix}[condition_type]"]) == ("sku", "in")
        skus = query[f"{prefix}[value]"].split(",")
        rows = [{"sku": sku, "source_code": "default", "quantity": self.items[sku]["quantity"], "status": 1}
                for sku in skus if sku in self.items]
        return reply(200, {"items": rows, "search_criteria": {}, "total_count": len(rows)})


def adapter(context=None, credentials=None, settings=None) -> MagentoAdapter:
    return MagentoAdapter(config("magento", BASE_URL, credentials or ADMIN, settings), context or FakeContext())


def price(sku, value) -> PushItem:
    return PushItem(sku=sku, aspect="price", version=1, price=Decimal(value))


def stock(sku, available) -> PushItem:
    return PushItem(sku=sku, aspect="inventory", version=1, available=available)


def outcomes(results):
    return {(r.sku, r.aspect): (r.outcome, r.code) for r in results}


# -- push ---------------------------------------------------------------------------------------


def test_prices_and_stock_go_in_one_call_each_with_an_admin_token(monkeypatch):
    # given
    store = FakeMagento({"A": (1.0, 0), "B": (1.0, 0)})
    context = FakeContext()
    session = install(monkeypatch, 9001, store)

    # when
    results = adapter(context).push([price("A", "12.50"), price("B", "3"), stock("A", 5), stock("B", 0)])

    # then
    assert all(r.ok for r in results)
    assert [(s.method, s.path.split("/mystore")[1]) for s in session.sent] == [
        ("POST", "/rest/V1/integration/admin/token"),
        ("POST", "/rest/all/V1/products/base-prices"),
        ("POST", "/rest/all/V1/inventory/source-items"),
    ]
    assert session.sent[0].json() == ADMIN
    assert session.sent[1].json() == {"prices": [{"sku": "A", "price": 12.5, "store_id": 0}, {"sku": "B", "price": 3.0, "store_id": 0}]}
    assert session.sent[2].json() == {"sourceItems": [
        {"sku": "A", "source_code": "default", "quantity": 5, "status": 1},
        {"sku": "B", "source_code": "default", "quantity": 0, "status": 0},
    ]}
    assert session.sent[1].headers["Authorization"] == "Bearer admintoken1"
    # the token is shared through the cache, renewed before Magento's 4 h are up
    assert context.cache["magento_admin_token"] == ("admintoken1", 14400 - 300)


def test_the_cached_token_is_reused(monkeypatch):
    store = FakeMagento({"A": (1.0, 0)})
    context = FakeContext()
    install(monkeypatch, 9001, store)

    adapter(context).push([price("A", "1")])
    adapter(context).push([price("A", "2")])

    assert store.tokens_issued == 1


def test_settings_choose_store_code_store_id_and_source(monkeypatch):
    sent_bodies = []

    def store(sent):
        if sent.path.endswith("/integration/admin/token"):
            return reply(200, "tok")
        sent_bodies.append((sent.path, sent.json()))
        return reply(200, [])

    install(monkeypatch, 9001, store)
    settings = {"store_code": "default", "store_id": 1, "source_code": "warehouse-eu"}

    adapter(settings=settings).push([price("A", "1"), stock("A", 2)])

    assert sent_bodies == [
        ("/magento/mystore/rest/default/V1/products/base-prices", {"prices": [{"sku": "A", "price": 1.0, "store_id": 1}]}),
        ("/magento/mystore/rest/default/V1/inventory/source-items",
         {"sourceItems": [{"sku": "A", "source_code": "warehouse-eu", "quantity": 2, "status": 1}]}),
    ]


def test_an_integration_token_is_sent_as_is(monkeypatch):
    store = FakeMagento({"A": (1.0, 0)})
    session = install(monkeypatch, 9001, store)

    results = adapter(credentials={"token": "integration-token"}).push([price("A", "1")])

    assert results[0].ok and store.tokens_issued == 0
    assert session.sent[0].headers["Authorization"] == "Bearer integration-token"


def test_a_401_renews_the_admin_token_once(monkeypatch):
    # given: a cached token the store has forgotten
    store = FakeMagento({"A": (1.0, 0)})
    context = FakeContext()
    install(monkeypatch, 9001, store)
    adapter(context).push([price("A", "1")])
    store.expire_tokens()

    # when
    result = adapter(context).push([price("A", "2")])[0]

    # then
    assert result.ok and store.tokens_issued == 2
    assert context.cache["magento_admin_token"][0] == "admintoken2"


def test_still_refused_after_renewal_is_auth(monkeypatch):
    store = FakeMagento({"A": (1.0, 0)})
    refused = reply(401, {"message": "The consumer isn't authorized to access %resources.", "parameters": {"resources": "Magento_Catalog::products"}})
    store.faults += [refused, refused]
    install(monkeypatch, 9001, store)

    result = adapter().push([price("A", "1")])[0]

    assert (result.outcome, result.code) == (Outcome.AUTH, "http_401")
    assert result.message == "The consumer isn't authorized to access Magento_Catalog::products."


def test_wrong_admin_password_is_auth(monkeypatch):
    install(monkeypatch, 9001, FakeMagento({"A": (1.0, 0)}))

    results = adapter(credentials={"username": "syncsvc", "password": "wrong"}).push([price("A", "1"), stock("A", 1)])

    assert {r.outcome for r in results} == {Outcome.AUTH}


@pytest.mark.parametrize("shape", ["dict", "list"])
def test_price_failures_fail_only_the_skus_they_name(monkeypatch, shape):
    # given
    store = FakeMagento({"A": (1.0, 0), "B": (1.0, 0)}, failure_shape=shape)
    install(monkeypatch, 9001, store)

    # when
    results = adapter().push([price("A", "9"), price("GHOST", "9"), price("B", "9")])

    # then
    assert outcomes(results) == {
        ("A", "price"): (Outcome.OK, ""), ("B", "price"): (Outcome.OK, ""),
        ("GHOST", "price"): (Outcome.PERMANENT, "unlisted"),
    }
    ghost = results[1]
    assert ghost.listed is False and ghost.message == "Invalid attribute SKU = GHOST. Row ID: SKU = GHOST, Store ID: 0."
    assert store.items["A"]["price"] == 9.0


def test_a_price_failure_naming_no_sku_retries_the_call(monkeypatch):
    def store(sent):
        if sent.path.endswith("/integration/admin/token"):
            return reply(200, "tok")
        return reply(200, [{"message": "Something went wrong", "parameters": []}])

    install(monkeypatch, 9001, store)

    results = adapter().push([price("A", "1"), price("B", "1")])

    assert {(r.outcome, r.code) for r in results} == {(Outcome.RETRY, "price_failure_unmatched")}


def test_an_msi_refusal_sets_aside_the_named_sku_and_resends_the_rest(monkeypatch):
    store = FakeMagento({"A": (1.0, 0), "B": (1.0, 0)})
    session = install(monkeypatch, 9001, store)

    results = adapter().push([stock("A", 3), stock("GHOST", 3), stock("B", 3)])

    assert outcomes(results) == {
        ("A", "inventory"): (Outcome.OK, ""), ("B", "inventory"): (Outcome.OK, ""),
        ("GHOST", "inventory"): (Outcome.PERMANENT, "unlisted"),
    }
    source_calls = [[row["sku"] for row in s.json()["sourceItems"]] for s in session.sent if s.path.endswith("source-items")]
    assert source_calls == [["A", "GHOST", "B"], ["A", "B"]]
    assert store.items["A"]["quantity"] == 3


def test_an_msi_refusal_naming_nobody_is_halved_until_the_bad_sku_is_alone(monkeypatch):
    store = FakeMagento({"A": (1.0, 0), "B": (1.0, 0), "C": (1.0, 0)})
    store.msi_names_sku = False
    session = install(monkeypatch, 9001, store)

    results = adapter().push([stock("A", 1), stock("B", 1), stock("GHOST", 1), stock("C", 1)])

    assert outcomes(results)[("GHOST", "inventory")] == (Outcome.PERMANENT, "http_400")
    assert all(r.ok for r in results if r.sku != "GHOST")
    source_calls = [[row["sku"] for row in s.json()["sourceItems"]] for s in session.sent if s.path.endswith("source-items")]
    assert source_calls == [["A", "B", "GHOST", "C"], ["A", "B"], ["GHOST", "C"], ["GHOST"], ["C"]]


def test_a_429_pauses_and_throttles_the_rest(monkeypatch):
    store = FakeMagento({"A": (1.0, 0)})
    store.faults.append(reply(429, {"message": "Too Many Requests"}, headers={"Retry-After": "5"}))
    context = FakeContext()
    session = install(monkeypatch, 9001, store)

    results = adapter(context).push([price("A", "1"), stock("A", 1)])

    assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.THROTTLED, 5.0)}
    assert context.pauses == [(5.0, "default")]
    assert not any(s.path.endswith("source-items") for s in session.sent)  # nothing sent after the 429


def test_an_empty_bucket_sends_nothing(monkeypatch):
    session = install(monkeypatch, 9001, FakeMagento({"A": (1.0, 0)}))

    results = adapter(FakeContext(waits={"default": [1.5]}), credentials={"token": "integration-token"}).push([price("A", "1")])

    assert session.sent == [] and (results[0].outcome, results[0].retry_after) == (Outcome.THROTTLED, 1.5)


def test_5xx_is_retried(monkeypatch):
    store = FakeMagento({"A": (1.0, 0)})
    store.faults.append(reply(503, content=b"Service Unavailable", headers={"Content-Type": "text/plain"}))
    install(monkeypatch, 9001, store)

    results = adapter().push([price("A", "1"), stock("A", 1)])

    assert {(r.outcome, r.code) for r in results} == {(Outcome.RETRY, "http_503")}


def test_network_errors_are_retried(monkeypatch):
    def down(sent):
        raise requests.ConnectTimeout("timed out")

    install(monkeypatch, 9001, down)

    results = adapter(credentials={"token": "integration-token"}).push([price("A", "1")])

    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "network_error")


# -- fetch --------------------------------------------------------------------------------------


def test_fetch_reads_prices_and_quantities_and_survives_an_unknown_sku(monkeypatch):
    store = FakeMagento({"A": (7.25, 3), "B": (1.5, 0)})
    session = install(monkeypatch, 9001, store)

    live = adapter().fetch(["A", "B", "GHOST"])

    assert {sku: (v.listed, v.price, v.available) for sku, v in live.items()} == {
        "A": (True, Decimal("7.25"), 3), "B": (True, Decimal("1.5"), 0), "GHOST": (False, None, None),
    }
    price_reads = [s.json()["skus"] for s in session.sent if s.path.endswith("base-prices-information")]
    assert price_reads == [["A", "B", "GHOST"], ["A", "B"]]  # the unknown SKU named by the error is dropped


def test_fetch_asks_one_by_one_when_the_refusal_names_nobody(monkeypatch):
    store = FakeMagento({"A": (2.0, 1), "B": (3.0, 2)})
    store.faults.append(reply(404, {"message": "The product that was requested doesn't exist."}))
    session = install(monkeypatch, 9001, store)

    live = adapter(credentials={"token": "integration-token"}).fetch(["A", "GHOST", "B"])

    assert {sku: (v.listed, v.price) for sku, v in live.items()} == {
        "A": (True, Decimal("2.0")), "GHOST": (False, None), "B": (True, Decimal("3.0")),
    }
    price_reads = [s.json()["skus"] for s in session.sent if s.path.endswith("base-prices-information")]
    assert price_reads == [["A", "GHOST", "B"], ["A"], ["GHOST"], ["B"]]


def test_fetch_reserves_both_reads_at_once_or_sends_nothing(monkeypatch):
    # given: a bucket without two tokens
    context = FakeContext(waits={"default": [3.0]})
    session = install(monkeypatch, 9001, FakeMagento({"A": (1.0, 1)}))

    # when / then
    with pytest.raises(ChannelThrottled) as raised:
        adapter(context, credentials={"token": "integration-token"}).fetch(["A"])
    assert raised.value.retry_after == 3.0 and session.sent == []
    assert context.costs == [("default", 2)]


# -- helpers and registration -------------------------------------------------------------------


def test_failure_parameters_are_read_in_every_shape():
    candidates = {"A", "B"}
    assert skus_named({"SKU": "A", "storeId": "0"}, candidates) == {"A"}
    assert skus_named(["B", "0"], candidates) == {"B"}
    assert skus_named({"fieldName": "SKU", "fieldValue": "A"}, candidates) == {"A"}
    assert skus_named({"resources": "x"}, candidates) == set()
    assert skus_named({"sku": "A,B"}, candidates) == {"A", "B"}
    assert render("Invalid %1 = %2.", ["SKU", "A"]) == "Invalid SKU = A."


def test_credentials_are_a_token_or_a_user():
    cls = adapter_class("magento")
    assert cls is MagentoAdapter
    assert cls.validate_credentials({"token": "t"}) == {}
    assert cls.validate_credentials({"username": "u", "password": "p"}) == {}
    assert set(cls.validate_credentials({"username": "u"})) == {"password"}
    assert set(cls.validate_credentials({})) == {"token"}
    assert cls.bucket_defaults({}) == {"default": (10.0, 20.0)}
