"""The Amazon SP-API adapter against a stub Amazon (no database, no sandbox).

What the adapter sends is validated against Amazon's official models: PATCH bodies against
`ListingsItemPatchRequest` (listingsItems 2021-08-01), feed documents against the
JSON_LISTINGS_FEED v2 schema and each message against the message schema, feed API bodies
against the Feeds 2021-06-30 definitions; the stub's own processing report validates against
the processing report schema.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import re
from decimal import Decimal
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import requests

from channels.adapters.amazon import AmazonAdapter
from channels.adapters.base import ChannelThrottled, Outcome, PushItem
from channels.adapters.registry import adapter_class
from channels.adapters.rest import CallError

from .rest_fakes import FakeContext, Sent, config, install, reply

from tests.support.reference import REFERENCE

SPECS = REFERENCE / "specs"
BASE_URL = "http://amazon.test/amazon/mystore"
SELLER = "A1SELLER"
MARKETPLACE = "ATVPDKIKX0DER"
CREDENTIALS = {"client_id": "amzn1.application-oa2-client.x", "client_secret": "secret", "refresh_token": "Atzr|r", "seller_id": SELLER}


@lru_cache(maxsize=None)
def spec(name: str) -> dict:
    return json.loads((SPECS / name).read_text())


def swagger_errors(model: str, definition: str, body) -> list[str]:
    document = spec(model)
    validator = jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]})
    return [error.message for error in validator.iter_errors(body)]


def schema_errors(name: str, instance) -> list[str]:
    return [error.message for error in jsonschema.Draft7Validator(spec(name)).iter_errors(instance)]


class FakeAmazon:
    """LWA, listings items and the feeds flow, with canned faults served first."""

    def __init__(self, listings: dict[str, tuple[float, int]] | None = None):
        self.listings = {sku: {"price": p, "quantity": q} for sku, (p, q) in (listings or {}).items()}
        self.invalid: dict[str, dict] = {}  # SKU -> the issue a PATCH of it gets
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.faults: list = []
        self.rate_limit_header = "5.0"
        self.uploads: dict[str, bytes] = {}
        self.feed_statuses: list[str] = ["IN_QUEUE", "IN_PROGRESS", "DONE"]
        self.report_issues: list[dict] = []

    def __call__(self, sent: Sent):
        path = sent.path.removeprefix("/amazon/mystore")
        if path == "/auth/o2/token":
            form = sent.form()
            assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert form == {"grant_type": "refresh_token", "refresh_token": "Atzr|r",
                            "client_id": CREDENTIALS["client_id"], "client_secret": "secret"}
            self.tokens_issued += 1
            token = f"Atza|{self.tokens_issued}"
            self.valid_tokens.add(token)
            return reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})
        if path.startswith("/s3/"):
            assert "x-amz-access-token" not in sent.headers  # presigned URLs never see our token
            return self.s3(sent, path)
        if self.faults:
            return self.faults.pop(0)
        if sent.headers.get("x-amz-access-token") not in self.valid_tokens:
            return reply(403, {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                                           "details": "The access token you provided has expired."}]})
        # Match the raw path: a SKU holding "/" arrives percent-encoded as one segment.
        match = re.fullmatch(r"/amazon/mystore/listings/2021-08-01/items/([^/]+)/([^/]+)", urlsplit(sent.url).path)
        if match:
            assert match.group(1) == SELLER and sent.query["marketplaceIds"] == MARKETPLACE
            return self.listing(sent, unquote(match.group(2)))
        return self.feeds(sent, path)

    def listing(self, sent: Sent, sku: str):
        headers = {"x-amzn-RateLimit-Limit": self.rate_limit_header, "x-amzn-RequestId": "req-1"}
        if sku not in self.listings:
            return reply(404, {"errors": [{"code": "NOT_FOUND", "message": f"SKU '{sku}' not found in marketplace {MARKETPLACE}"}]}, headers=headers)
        listing = self.listings[sku]
        if sent.method == "GET" and sent.query["includedData"] == "summaries":
            return reply(200, {"sku": sku, "summaries": [{"marketplaceId": MARKETPLACE, "asin": f"B0{sku}"}]}, headers=headers)
        if sent.method == "GET":
            assert sent.query["includedData"] == "attributes,fulfillmentAvailability"
            return reply(200, {
                "sku": sku,
                "attributes": {"purchasable_offer": [{"marketplace_id": MARKETPLACE, "currency": "USD",
                                                      "our_price": [{"schedule": [{"value_with_tax": listing["price"]}]}]}]},
                "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": listing["quantity"]}],
            }, headers=headers)
        body = sent.json()
        errors = swagger_errors("amazon-spapi-listingsItems_2021-08-01.json", "ListingsItemPatchRequest", body)
        assert not errors, errors
        if sku in self.invalid:
            return reply(200, {"sku": sku, "status": "INVALID", "submissionId": "s-1", "issues": [self.invalid[sku]]}, headers=headers)
        for patch in body["patches"]:
            value = patch["value"][0]
            if patch["path"] == "/attributes/purchasable_offer":
                listing["price"] = value["our_price"][0]["schedule"][0]["value_with_tax"]
            elif patch["path"] == "/attributes/fulfillment_availability":
                listing["quantity"] = value["quantity"]
        return reply(200, {"sku": sku, "status": "ACCEPTED", "submissionId": "s-1", "issues": []}, headers=headers)

    def feeds(self, sent: Sent, path: str):
        model = "amazon-spapi-feeds_2021-06-30.json"
        if sent.method == "POST" and path == "/feeds/2021-06-30/documents":
            assert not swagger_errors(model, "CreateFeedDocumentSpecification", sent.json())
            return reply(201, {"feedDocumentId": "doc-in-1", "url": f"{BASE_URL}/s3/upload/doc-in-1"})
        if sent.method == "POST" and path == "/feeds/2021-06-30/feeds":
            assert not swagger_errors(model, "CreateFeedSpecification", sent.json())
            assert sent.json()["inputFeedDocumentId"] in self.uploads
            return reply(202, {"feedId": "50001"})
        if sent.method == "GET" and path == "/feeds/2021-06-30/feeds/50001":
            status = self.feed_statuses.pop(0)
            feed = {"feedId": "50001", "feedType": "JSON_LISTINGS_FEED", "createdTime": "2026-01-01T00:00:00Z", "processingStatus": status}
            if status == "DONE":
                feed["resultFeedDocumentId"] = "doc-out-1"
            return reply(200, feed)
        if sent.method == "GET" and path == "/feeds/2021-06-30/documents/doc-out-1":
            return reply(200, {"feedDocumentId": "doc-out-1", "url": f"{BASE_URL}/s3/report/doc-out-1", "compressionAlgorithm": "GZIP"})
        raise AssertionError(f"unexpected {sent.method} {path}")

    def s3(self, sent: Sent, path: str):
        if sent.method == "PUT":
            self.uploads[path.rsplit("/", 1)[1]] = sent.body
            return reply(200, content=b"")
        document = json.loads(next(iter(self.uploads.values())))
        report = {
            "header": {"sellerId": SELLER, "version": "2.0", "feedId": "50001"},
            "issues": self.report_issues,
            "summary": {"errors": len(self.report_issues), "warnings": 0, "messagesProcessed": len(document["messages"]),
                        "messagesAccepted": len(document["messages"]) - len(self.report_issues),
                        "messagesInvalid": len(self.report_issues)},
        }
        assert not schema_errors("amazon-spapi-listings-feed-processing-report-schema-v2.json", report)
        return reply(200, content=gzip.compress(json.dumps(report).encode()))


def adapter(context=None, settings=None) -> AmazonAdapter:
    return AmazonAdapter(config("amazon", BASE_URL, CREDENTIALS, settings), context or FakeContext())


def price(sku, value) -> PushItem:
    return PushItem(sku=sku, aspect="price", version=1, price=Decimal(value))


def stock(sku, available) -> PushItem:
    return PushItem(sku=sku, aspect="inventory", version=1, available=available)


def listed(item: PushItem) -> PushItem:
    """The item as flush sends it once the SKU's listing is known."""
    return dataclasses.replace(item, external_ids={"marketplace_id": MARKETPLACE, "asin": "B0X"})


def outcomes(results):
    return {(r.sku, r.aspect): (r.outcome, r.code) for r in results}


# -- push ---------------------------------------------------------------------------------------


def test_one_patch_per_sku_carries_both_aspects_after_one_lookup(monkeypatch):
    # given: two SKUs never pushed before
    shop = FakeAmazon({"A": (1.0, 0), "B/2": (1.0, 0)})
    context = FakeContext()
    session = install(monkeypatch, 9001, shop)

    # when
    results = adapter(context).push([price("A", "12.50"), stock("A", 4), stock("B/2", 7)])

    # then: each SKU is looked up once, then patched once
    assert all(r.ok for r in results)
    item = f"/listings/2021-08-01/items/{SELLER}"
    assert [(s.method, s.url.split("/mystore")[1]) for s in session.sent] == [
        ("POST", "/auth/o2/token"),
        ("GET", f"{item}/A?marketplaceIds={MARKETPLACE}&includedData=summaries"),
        ("PATCH", f"{item}/A?marketplaceIds={MARKETPLACE}"),
        ("GET", f"{item}/B%2F2?marketplaceIds={MARKETPLACE}&includedData=summaries"),
        ("PATCH", f"{item}/B%2F2?marketplaceIds={MARKETPLACE}"),
    ]
    assert session.sent[2].json() == {"productType": "PRODUCT", "patches": [
        {"op": "replace", "path": "/attributes/purchasable_offer", "value": [
            {"marketplace_id": MARKETPLACE, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 12.5}]}]}]},
        {"op": "replace", "path": "/attributes/fulfillment_availability", "value": [
            {"fulfillment_channel_code": "DEFAULT", "quantity": 4}]},
    ]}
    assert session.sent[2].headers["x-amz-access-token"] == "Atza|1"
    assert session.sent[2].headers["Content-Type"] == "application/json"
    assert shop.listings["A"] == {"price": 12.5, "quantity": 4} and shop.listings["B/2"]["quantity"] == 7
    assert results[0].external_ids == {"marketplace_id": MARKETPLACE, "asin": "B0A"}
    # the token is shared, renewed a minute early; the buckets hear Amazon's rate
    assert context.cache["amazon_lwa_access_token"] == ("Atza|1", 3540.0)
    assert context.acquired == ["auth", "get", "patch", "get", "patch"]
    assert {"bucket": "patch", "available": None, "maximum": None, "restore_rate": 5.0, "refund": 0.0} in context.observed


def test_a_sku_looked_up_before_is_patched_directly(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0)})
    session = install(monkeypatch, 9001, shop)

    result = adapter().push([listed(price("A", "2"))])[0]

    assert result.ok and result.external_ids is None
    assert [s.method for s in session.sent] == ["POST", "PATCH"]


def test_settings_shape_the_patch(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0)})
    session = install(monkeypatch, 9001, shop)
    settings = {"product_type": "LUGGAGE", "currency": "EUR", "marketplace_id": MARKETPLACE}

    adapter(settings=settings).push([listed(price("A", "3"))])

    body = session.sent[-1].json()
    assert body["productType"] == "LUGGAGE" and body["patches"][0]["value"][0]["currency"] == "EUR"


def test_an_unknown_sku_is_unlisted_without_a_patch_and_the_others_go(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0)})
    session = install(monkeypatch, 9001, shop)

    results = adapter().push([price("GHOST", "1"), price("A", "2")])

    assert outcomes(results) == {("GHOST", "price"): (Outcome.PERMANENT, "unlisted"), ("A", "price"): (Outcome.OK, "")}
    assert results[0].listed is False
    assert not any(s.method == "PATCH" and "GHOST" in s.url for s in session.sent)
    assert "GHOST" not in shop.listings


def test_a_lookup_refused_with_400_fails_only_that_sku(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0), "B": (1.0, 0)})
    shop.faults.append(reply(400, {"errors": [{"code": "InvalidInput", "message": "Invalid SKU"}]}))
    install(monkeypatch, 9001, shop)

    results = adapter().push([price("A", "1"), price("B", "2")])

    assert outcomes(results) == {("A", "price"): (Outcome.PERMANENT, "InvalidInput"), ("B", "price"): (Outcome.OK, "")}


def test_a_patch_answered_404_is_unlisted(monkeypatch):
    # given: ids from an earlier lookup, but the listing is gone since
    install(monkeypatch, 9001, FakeAmazon())

    result = adapter().push([listed(price("GONE", "1"))])[0]

    assert (result.outcome, result.code, result.listed) == (Outcome.PERMANENT, "unlisted", False)


def test_an_invalid_submission_is_permanent_with_amazons_issue(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0), "B": (1.0, 0)})
    shop.invalid["A"] = {"code": "90220", "message": "'[purchasable_offer]' is invalid.", "severity": "ERROR", "categories": ["INVALID_PRICE"]}
    install(monkeypatch, 9001, shop)

    results = adapter().push([listed(price("A", "1")), listed(stock("A", 1)), listed(price("B", "1"))])

    assert outcomes(results) == {
        ("A", "price"): (Outcome.PERMANENT, "90220"), ("A", "inventory"): (Outcome.PERMANENT, "90220"),
        ("B", "price"): (Outcome.OK, ""),
    }
    assert results[0].message == "'[purchasable_offer]' is invalid."


def test_a_429_pauses_the_patch_bucket_and_throttles_the_rest(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0), "B": (1.0, 0)})
    shop.faults.append(reply(429, {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}]}))
    context = FakeContext()
    session = install(monkeypatch, 9001, shop)

    results = adapter(context).push([listed(price("A", "1")), listed(price("B", "1"))])

    assert {(r.outcome, r.code) for r in results} == {(Outcome.THROTTLED, "QuotaExceeded")}
    assert context.pauses == [(1.0, "patch")]
    assert len([s for s in session.sent if s.method == "PATCH"]) == 1


def test_an_empty_bucket_stops_before_sending(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0), "B": (1.0, 0)})
    context = FakeContext(waits={"patch": [0.0, 0.4]})
    install(monkeypatch, 9001, shop)

    results = adapter(context).push([listed(price("A", "1")), listed(price("B", "1"))])

    assert outcomes(results) == {("A", "price"): (Outcome.OK, ""), ("B", "price"): (Outcome.THROTTLED, "rate_limited")}
    assert results[1].retry_after == 0.4


def test_an_expired_token_is_renewed_once(monkeypatch):
    # given: a cached token Amazon no longer takes
    shop = FakeAmazon({"A": (1.0, 0)})
    context = FakeContext(cache={"amazon_lwa_access_token": ("Atza|old", 100.0)})
    install(monkeypatch, 9001, shop)

    # when
    result = adapter(context).push([listed(price("A", "5"))])[0]

    # then
    assert result.ok and shop.tokens_issued == 1
    assert context.cache["amazon_lwa_access_token"][0] == "Atza|1"


def test_refused_after_renewal_is_auth(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0)})
    refused = reply(403, {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]})
    shop.faults += [refused, refused]
    install(monkeypatch, 9001, shop)

    results = adapter().push([price("A", "5"), price("B", "1")])

    assert {(r.outcome, r.code) for r in results} == {(Outcome.AUTH, "Unauthorized")}


def test_a_refused_refresh_token_is_auth(monkeypatch):
    def lwa(sent):
        return reply(400, {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"})

    install(monkeypatch, 9001, lwa)

    result = adapter().push([price("A", "5")])[0]

    assert (result.outcome, result.code) == (Outcome.AUTH, "lwa_invalid_grant")


def test_5xx_and_network_errors_are_retried(monkeypatch):
    shop = FakeAmazon({"A": (1.0, 0)})
    shop.faults.append(reply(503, {"errors": [{"code": "ServiceUnavailable", "message": "Try again"}]}))
    install(monkeypatch, 9001, shop)
    assert (adapter().push([price("A", "1")])[0].outcome) is Outcome.RETRY

    def down(sent):
        raise requests.ConnectionError("reset")

    install(monkeypatch, 9001, down)
    result = adapter().push([price("A", "1")])[0]
    assert (result.outcome, result.code) == (Outcome.RETRY, "network_error")


# -- feeds --------------------------------------------------------------------------------------


def test_a_feed_document_matches_amazons_schemas_and_reports_map_back(monkeypatch):
    # given
    shop = FakeAmazon()
    shop.report_issues = [{"messageId": 2, "sku": "B", "code": "90220", "severity": "ERROR",
                           "message": "'[fulfillment_availability]' is required but not supplied."},
                          {"messageId": 1, "sku": "A", "code": "18448", "severity": "WARNING", "message": "Just a warning"}]
    context = FakeContext()
    session = install(monkeypatch, 9001, shop)
    amazon = adapter(context)

    # when
    feed_id = amazon.push_feed([price("A", "9.99"), stock("A", 2), stock("B", 5)])

    # then: the uploaded document is a valid JSON_LISTINGS_FEED
    document = json.loads(shop.uploads["doc-in-1"])
    assert not schema_errors("amazon-spapi-listings-feed-schema-v2.json", document)
    for message in document["messages"]:
        assert not schema_errors("amazon-spapi-listings-feed-message-schema-v2.json", message)
    assert document["header"] == {"sellerId": SELLER, "version": "2.0", "issueLocale": "en_US"}
    assert [(m["messageId"], m["sku"], m["operationType"], [p["path"] for p in m["patches"]]) for m in document["messages"]] == [
        (1, "A", "PATCH", ["/attributes/purchasable_offer", "/attributes/fulfillment_availability"]),
        (2, "B", "PATCH", ["/attributes/fulfillment_availability"]),
    ]
    create_feed = next(s for s in session.sent if s.path.endswith("/feeds/2021-06-30/feeds"))
    assert create_feed.json() == {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE], "inputFeedDocumentId": "doc-in-1"}
    assert feed_id == "50001" and "feeds" in context.acquired

    # when: polled while Amazon works, then once it is done
    assert amazon.feed_results(feed_id) is None
    assert amazon.feed_results(feed_id) is None
    results = amazon.feed_results(feed_id)

    # then: only the message with an ERROR fails
    assert outcomes(results) == {
        ("A", "price"): (Outcome.OK, ""), ("A", "inventory"): (Outcome.OK, ""),
        ("B", "inventory"): (Outcome.PERMANENT, "90220"),
    }
    assert "amazon_feed:50001" not in context.cache
    with pytest.raises(LookupError):
        amazon.feed_results(feed_id)


def test_a_push_above_the_threshold_goes_as_a_feed(monkeypatch):
    shop = FakeAmazon()
    session = install(monkeypatch, 9001, shop)

    results = adapter(settings={"feed_threshold": 2}).push([price("A", "1"), price("B", "1"), price("C", "1")])

    assert not any(s.method == "PATCH" for s in session.sent)
    assert {(r.outcome, r.code, r.message) for r in results} == {(Outcome.OK, "feed_submitted", "feed 50001")}


def test_a_fatal_feed_is_retried_and_a_throttled_feed_says_so(monkeypatch):
    shop = FakeAmazon()
    shop.feed_statuses = ["FATAL"]
    install(monkeypatch, 9001, shop)
    amazon = adapter()
    feed_id = amazon.push_feed([price("A", "1")])

    assert outcomes(amazon.feed_results(feed_id)) == {("A", "price"): (Outcome.RETRY, "feed_fatal")}

    throttled = adapter(FakeContext(waits={"feeds": [120.0]}))
    with pytest.raises(CallError) as raised:
        throttled.push_feed([price("A", "1")])
    assert (raised.value.outcome, raised.value.retry_after) == (Outcome.THROTTLED, 120.0)


# -- fetch --------------------------------------------------------------------------------------


def test_fetch_reads_price_and_quantity(monkeypatch):
    shop = FakeAmazon({"A": (7.25, 3)})
    context = FakeContext()
    install(monkeypatch, 9001, shop)

    live = adapter(context).fetch(["A", "GHOST"])

    assert (live["A"].listed, live["A"].price, live["A"].available) == (True, Decimal("7.25"), 3)
    assert live["GHOST"].listed is False
    assert context.acquired == ["get", "auth"]  # both reads reserved at once, before the token


def test_a_fetch_stopped_by_the_rate_limit_resumes_where_it_stopped(monkeypatch):
    # given: a burst of 2 reads, and a bucket that runs dry after the first burst
    shop = FakeAmazon({"A": (1.0, 1), "B": (2.0, 2), "C": (3.0, 3)})
    context = FakeContext(waits={"get": [0.0, 0.7]})
    session = install(monkeypatch, 9001, shop)
    amazon = adapter(context, settings={"get_burst": 2})

    # when
    with pytest.raises(ChannelThrottled) as raised:
        amazon.fetch(["A", "B", "C"])
    live = amazon.fetch(["A", "B", "C"])

    # then: A and B were not read twice
    assert raised.value.retry_after == 0.7
    reads = [s.path.rsplit("/", 1)[1] for s in session.sent if s.method == "GET"]
    assert reads == ["A", "B", "C"]
    assert {sku: v.available for sku, v in live.items()} == {"A": 1, "B": 2, "C": 3}
    assert ("get", 2) in context.costs


def test_fetch_throttled_raises_channel_throttled(monkeypatch):
    install(monkeypatch, 9001, FakeAmazon({"A": (1.0, 0)}))
    with pytest.raises(ChannelThrottled) as raised:
        adapter(FakeContext(waits={"get": [0.2]})).fetch(["A"])
    assert raised.value.retry_after == 0.2


# -- registration -------------------------------------------------------------------------------


def test_registered_with_one_bucket_per_operation():
    cls = adapter_class("amazon")
    assert cls is AmazonAdapter
    buckets = cls.bucket_defaults({"patch_rate_per_s": 10, "patch_burst": 10})
    assert buckets["default"] == buckets["patch"] == (10.0, 10.0)
    assert buckets["get"] == (5.0, 5.0) and buckets["feeds"] == (0.0083, 15.0)
    assert set(cls.validate_credentials({})) == {"client_id", "client_secret", "refresh_token", "seller_id"}
