"""The Shopify adapter against a stubbed HTTP session (no database, no sandbox).

Every request the adapter sends is checked against Shopify's official Admin 2025-01 schema,
extended with the later additions the reference notes (`InventoryQuantityInput.changeFromQuantity`,
`@idempotent(key:)`): the document must validate and the variables must coerce to its types.
The stub shop is a few lines of canned behaviour per operation; each test names what it proves.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

import pytest
import requests
from graphql import FieldNode, build_client_schema, extend_schema, parse, validate
from graphql.execution.values import get_variable_values
from requests.structures import CaseInsensitiveDict

from channels.adapters.base import ChannelConfig, Outcome, PushItem
from channels.adapters.registry import adapter_class
from channels.adapters.shopify import ShopifyAdapter, documents
from channels.adapters.shopify.cost import requested_cost
from channels.adapters.shopify.errors import ShopifyCallError
from channels.adapters.shopify.inventory import idempotency_key

from tests.support.reference import reference_file

SCHEMA_FILE = reference_file("specs/shopify-admin-2025-01.introspection.json")
LATER_ADDITIONS = """
extend input InventoryQuantityInput { changeFromQuantity: Int }
directive @idempotent(key: String!) on FIELD
"""
BASE_URL = "http://shop.test/shopify/mystore"
LOCATION = "gid://shopify/Location/1"


@lru_cache(maxsize=1)
def shopify_schema():
    introspection = json.loads(SCHEMA_FILE.read_text())
    return extend_schema(build_client_schema(introspection["data"]), parse(LATER_ADDITIONS))


def schema_errors(document: str, variables: dict | None = None) -> list[str]:
    """What the schema says is wrong with a document and its variables (empty when valid)."""
    schema = shopify_schema()
    tree = parse(document)
    errors = [error.message for error in validate(schema, tree)]
    if not errors and variables is not None:
        operation = tree.definitions[0]
        coerced = get_variable_values(schema, operation.variable_definitions, variables)
        if isinstance(coerced, list):
            errors = [error.message for error in coerced]
    return errors


# -- the stub shop -------------------------------------------------------------------------


@dataclass
class Variant:
    sku: str
    number: int
    product: int
    price: str = "1.00"
    compare_at_price: str | None = None
    available: int | None = 0  # at LOCATION; None: not stocked there

    @property
    def id(self):
        return f"gid://shopify/ProductVariant/{self.number}"

    @property
    def product_id(self):
        return f"gid://shopify/Product/{self.product}"

    @property
    def item_id(self):
        return f"gid://shopify/InventoryItem/{self.number}"


def response(status: int = 200, body=None, headers: dict | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if body is not None else b""
    answer.headers = CaseInsensitiveDict(headers or {})
    answer.encoding = "utf-8"
    return answer


def cost_extension(cost, available=1900.0, actual="same"):
    return {"cost": {
        "requestedQueryCost": cost,
        "actualQueryCost": cost if actual == "same" else actual,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0},
    }}


@dataclass
class Request:
    url: str
    headers: dict
    query: str
    variables: dict

    @property
    def operation(self) -> str:
        return parse(self.query).definitions[0].name.value


@dataclass
class FakeShop:
    """Answers the adapter's operations from a few variants; validates every request."""

    variants: list[Variant] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    canned: list[requests.Response] = field(default_factory=list)  # answered first, in order
    before_inventory_write: list = field(default_factory=list)  # callables, one per write
    replays: dict = field(default_factory=dict)  # idempotency key -> first answer

    def by_sku(self, sku):
        return next(v for v in self.variants if v.sku == sku)

    def post(self, url, data=None, headers=None, timeout=None):
        body = json.loads(data)
        request = Request(url, dict(headers or {}), body["query"], body.get("variables") or {})
        self.requests.append(request)
        assert schema_errors(request.query, request.variables) == []
        if self.canned:
            return self.canned.pop(0)
        data = getattr(self, "_" + request.operation)(request)
        return response(200, {"data": data, "extensions": cost_extension(requested_cost(request.query, request.variables))})

    def _SyncsvcFirstLocation(self, request):
        return {"locations": {"nodes": [{"id": LOCATION}]}}

    def _variant_node(self, variant, with_stock):
        node = {"id": variant.id, "sku": variant.sku, "product": {"id": variant.product_id}, "inventoryItem": {"id": variant.item_id}}
        if with_stock:
            node["price"] = variant.price
            node["inventoryItem"]["inventoryLevel"] = self._level(variant)
        return node

    def _level(self, variant):
        if variant.available is None:
            return None
        return {"quantities": [{"name": "available", "quantity": variant.available}]}

    def _search(self, request, with_stock):
        terms = re.findall(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))', request.variables["query"])
        skus = [quoted.replace('\\"', '"').replace("\\\\", "\\") or bare for quoted, bare in terms]
        matches = [v for v in self.variants if v.sku in skus]
        first = request.variables["first"]
        return {"productVariants": {
            "nodes": [self._variant_node(v, with_stock) for v in matches[:first]],
            "pageInfo": {"hasNextPage": len(matches) > first},
        }}

    def _SyncsvcVariantsBySku(self, request):
        return self._search(request, with_stock=False)

    def _SyncsvcVariantsBySkuWithStock(self, request):
        return self._search(request, with_stock=True)

    def _SyncsvcInventoryLevels(self, request):
        by_item = {v.item_id: v for v in self.variants}
        return {"nodes": [
            {"id": item_id, "inventoryLevel": self._level(by_item[item_id])} if item_id in by_item else None
            for item_id in request.variables["ids"]
        ]}

    def _SyncsvcPrices(self, request):
        data = {}
        for selection in parse(request.query).definitions[0].selection_set.selections:
            assert isinstance(selection, FieldNode)
            args = {a.name.value: a.value.name.value for a in selection.arguments if hasattr(a.value, "name")}
            product = request.variables[args["productId"]]
            errors = []
            for index, change in enumerate(request.variables[args["variants"]]):
                variant = next((v for v in self.variants if v.id == change["id"] and v.product_id == product), None)
                if variant is None:
                    errors.append({"code": "PRODUCT_VARIANT_DOES_NOT_EXIST", "field": ["variants", str(index), "id"], "message": "Product variant does not exist"})
                elif Decimal(change["price"]) < 0:
                    errors.append({"code": "GREATER_THAN_OR_EQUAL_TO", "field": ["variants", str(index), "price"], "message": "Price must be greater than or equal to 0"})
                else:
                    variant.price, variant.compare_at_price = change["price"], change["compareAtPrice"]
            data[selection.alias.value] = {"userErrors": errors}
        return data

    def _SyncsvcSetInventory(self, request):
        key = re.search(r'@idempotent\(key: "([^"]+)"\)', request.query).group(1)
        if key in self.replays:
            return self.replays[key]
        if self.before_inventory_write:
            self.before_inventory_write.pop(0)(self)
        by_item = {v.item_id: v for v in self.variants}
        quantities = request.variables["input"]["quantities"]
        errors = [
            {"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input", "quantities", str(i), "changeFromQuantity"],
             "message": "The changeFromQuantity value does not match persisted value."}
            for i, q in enumerate(quantities) if by_item[q["inventoryItemId"]].available != q["changeFromQuantity"]
        ]
        if not errors:  # all or nothing, as a cautious reading of Shopify's docs allows
            for q in quantities:
                by_item[q["inventoryItemId"]].available = q["quantity"]
        answer = {"inventorySetQuantities": {"userErrors": errors}}
        self.replays[key] = answer
        return answer


@dataclass
class FakeContext:
    waits: list[float] = field(default_factory=list)  # acquire answers, then 0.0
    acquired: list[float] = field(default_factory=list)
    observed: list[dict] = field(default_factory=list)
    paused: list[float] = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    def acquire(self, cost=1.0, *, bucket="default", spend=None, then=0.0):
        self.acquired.append(cost)
        return self.waits.pop(0) if self.waits else 0.0

    def observe(self, *, bucket="default", available=None, maximum=None, restore_rate=None, refund=0.0):
        self.observed.append({"available": available, "maximum": maximum, "restore_rate": restore_rate, "refund": refund})

    def pause(self, seconds, *, bucket="default"):
        self.paused.append(seconds)

    def cache_get(self, name):
        return self.cache.get(name)

    def cache_set(self, name, value, ttl_s):
        self.cache[name] = value

    def cache_delete(self, name):
        self.cache.pop(name, None)


@pytest.fixture
def shop(monkeypatch):
    fake = FakeShop()
    monkeypatch.setattr("channels.adapters.shopify.client.session_for", lambda channel_id: fake)
    return fake


def adapter(context=None, channel_id=7, **settings) -> ShopifyAdapter:
    config = ChannelConfig(
        id=channel_id, name="shop", kind="shopify", base_url=BASE_URL,
        credentials={"access_token": "shpat_test"}, settings={"location_id": LOCATION, **settings},
    )
    return ShopifyAdapter(config, context or FakeContext())


def price(sku, value, version=1, ids=None, compare_at=None):
    return PushItem(sku=sku, aspect="price", version=version, price=Decimal(value), compare_at_price=compare_at,
                    external_ids=ids or {})


def stock(sku, available, version=1, ids=None):
    return PushItem(sku=sku, aspect="inventory", version=version, available=available, external_ids=ids or {})


def ids_of(variant: Variant) -> dict:
    return {"variant_id": variant.id, "product_id": variant.product_id, "inventory_item_id": variant.item_id, "location_id": LOCATION}


# -- documents and costs -------------------------------------------------------------------


def every_document() -> dict[str, str]:
    """Every document the adapter can send: the stored constants, and the built ones."""
    constants = {
        name: value for name, value in vars(documents).items()
        if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))
        and "<" not in value  # templates are covered through their builders below
    }
    built = {f"prices_update({n})": documents.prices_update(n) for n in (1, 2, 25)}
    built["inventory_set"] = documents.inventory_set(str(uuid.uuid4()))
    return {**constants, **built}


@pytest.mark.parametrize("name", sorted(every_document()))
def test_every_document_validates_against_the_shopify_schema(name):
    assert schema_errors(every_document()[name]) == []


def test_the_schema_check_refuses_a_field_shopify_lacks():
    # given: a document like ours with one field the schema does not have
    document = documents.VARIANTS_BY_SKU.replace("sku\n", "sku\n      warehouseBin\n")

    # then
    assert any("warehouseBin" in message for message in schema_errors(document))


def test_the_2025_01_schema_alone_lacks_the_compare_and_set_additions():
    # given: the unextended schema (proves the extension is what the inventory mutation needs)
    plain = build_client_schema(json.loads(SCHEMA_FILE.read_text())["data"])

    # then
    assert validate(plain, parse(documents.inventory_set(str(uuid.uuid4()))))


def test_cost_of_each_document():
    assert requested_cost(documents.FIRST_LOCATION) == 3  # connection 2 + 1 node
    assert requested_cost(documents.VARIANTS_BY_SKU, {"first": 100, "query": ""}) == 2 + 100 * 3 + 1
    assert requested_cost(documents.VARIANTS_BY_SKU_WITH_STOCK, {"first": 100, "query": "", "locationId": LOCATION}) == 2 + 100 * 5 + 1
    assert requested_cost(documents.INVENTORY_LEVELS, {"ids": ["x"] * 250, "locationId": LOCATION}) == 250 * 3
    # a mutation: 10, plus its payload as a query would cost it (userErrors: 1)
    assert requested_cost(documents.prices_update(1)) == 11
    assert requested_cost(documents.prices_update(25)) == 275
    assert requested_cost(documents.inventory_set(str(uuid.uuid4()))) == 11
    # the catalog refresh's bulk path (bulk.py): a slim lookup, and one object per bulk call
    assert requested_cost(documents.PRODUCT_IDS_BY_SKU, {"first": 100, "query": ""}) == 2 + 100 * 2 + 1
    assert requested_cost(documents.CURRENT_BULK_MUTATION) == 1
    assert requested_cost(documents.BULK_OPERATION, {"id": "gid://shopify/BulkOperation/1"}) == 1
    assert requested_cost(documents.STAGED_UPLOADS_CREATE, {"input": [{}]}) == 13
    assert requested_cost(documents.BULK_RUN_MUTATION) == 12
    assert requested_cost(documents.BULK_CONTENT_UPDATE) == 12  # per line, inside the bulk job: not charged
    assert set(every_document()) == {
        "FIRST_LOCATION", "VARIANTS_BY_SKU", "VARIANTS_BY_SKU_WITH_STOCK", "INVENTORY_LEVELS",
        "prices_update(1)", "prices_update(2)", "prices_update(25)", "inventory_set",
        "PRODUCT_IDS_BY_SKU", "CURRENT_BULK_MUTATION", "BULK_OPERATION", "STAGED_UPLOADS_CREATE",
        "BULK_RUN_MUTATION", "BULK_CONTENT_UPDATE",
    }, "a new document needs its cost asserted here"


def test_each_call_takes_its_cost_from_the_bucket_first(shop):
    # given
    shop.variants = [Variant("A", 1, 10)]
    context = FakeContext()

    # when
    adapter(context).push([price("A", "5.00")])

    # then: lookup (2 + 2*3 + 1: one variant more than SKUs named) then one price mutation
    # (11), each acquired before sending
    assert context.acquired == [9, 11]
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySku", "SyncsvcPrices"]


def test_registered_and_bucket_defaults_follow_the_plan():
    assert adapter_class("shopify") is ShopifyAdapter
    assert ShopifyAdapter.bucket_defaults({}) == {"default": (100.0, 2000.0)}
    assert ShopifyAdapter.bucket_defaults({"plan": "plus"}) == {"default": (1000.0, 2000.0)}
    assert ShopifyAdapter.bucket_defaults({"plan": "advanced", "bucket_size": 4000}) == {"default": (200.0, 4000.0)}
    assert ShopifyAdapter.bucket_defaults({"plan": "plus", "restore_rate": 500}) == {"default": (500.0, 2000.0)}
    assert ShopifyAdapter.validate_credentials({}) == {"access_token": "required for a shopify channel"}


# -- requests ------------------------------------------------------------------------------


def test_posts_to_the_versioned_endpoint_with_the_access_token(shop):
    # given
    shop.variants = [Variant("A", 1, 10)]

    # when
    adapter(api_version="2026-07").push([price("A", "5.00", ids=ids_of(shop.variants[0]))])

    # then
    request = shop.requests[0]
    assert request.url == f"{BASE_URL}/admin/api/2026-07/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == "shpat_test"
    assert request.headers["Content-Type"] == "application/json"


def test_default_api_version_is_2026_10(shop):
    shop.variants = [Variant("A", 1, 10)]
    adapter().push([price("A", "5.00", ids=ids_of(shop.variants[0]))])
    assert shop.requests[0].url.endswith("/admin/api/2026-10/graphql.json")


# -- prices --------------------------------------------------------------------------------


def test_prices_are_grouped_one_mutation_per_product_in_one_request(shop):
    # given: A and B are variants of one product, C of another; all resolved before
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 10), Variant("C", 3, 11)]
    items = [price(v.sku, f"{n + 5}.50", ids=ids_of(v)) for n, v in enumerate(shop.variants)]
    items[2] = price("C", "9.00", ids=ids_of(shop.variants[2]), compare_at=Decimal("12.00"))

    # when
    results = adapter().push(items)

    # then
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert [r.operation for r in shop.requests] == ["SyncsvcPrices"]
    assert shop.requests[0].variables == {
        "product0": "gid://shopify/Product/10",
        "variants0": [
            {"id": "gid://shopify/ProductVariant/1", "price": "5.50", "compareAtPrice": None},
            {"id": "gid://shopify/ProductVariant/2", "price": "6.50", "compareAtPrice": None},
        ],
        "product1": "gid://shopify/Product/11",
        "variants1": [{"id": "gid://shopify/ProductVariant/3", "price": "9.00", "compareAtPrice": "12.00"}],
    }
    assert [v.price for v in shop.variants] == ["5.50", "6.50", "9.00"]


def test_many_products_are_split_into_documents_of_the_configured_size(shop):
    # given: 5 products, 2 per request
    shop.variants = [Variant(f"S{n}", n, 100 + n) for n in range(5)]

    # when
    results = adapter(price_mutations_per_request=2).push([price(v.sku, "3.00", ids=ids_of(v)) for v in shop.variants])

    # then
    assert all(r.ok for r in results)
    assert [requested_cost(r.query) for r in shop.requests] == [22, 22, 11]


def test_a_price_user_error_fails_only_that_sku(shop):
    # given: B's price is refused by the shop
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 10), Variant("C", 3, 11)]
    items = [price("A", "5.00", ids=ids_of(shop.variants[0])), price("B", "-1.00", ids=ids_of(shop.variants[1])),
             price("C", "7.00", ids=ids_of(shop.variants[2]))]

    # when
    results = adapter().push(items)

    # then
    assert [(r.sku, r.outcome, r.code) for r in results] == [
        ("A", Outcome.OK, ""), ("B", Outcome.PERMANENT, "GREATER_THAN_OR_EQUAL_TO"), ("C", Outcome.OK, ""),
    ]
    assert "greater than or equal" in results[1].message
    assert "allowPartialUpdates: true" in shop.requests[0].query


def test_unresolved_skus_are_looked_up_in_one_query_and_their_ids_returned(shop):
    # given
    shop.variants = [Variant("A", 1, 10), Variant('Q"1', 2, 11)]

    # when
    results = adapter().push([price("A", "5.00"), price('Q"1', "6.00"), price("GHOST", "7.00")])

    # then
    lookup = shop.requests[0]
    assert lookup.operation == "SyncsvcVariantsBySku"
    assert lookup.variables == {"first": 4, "query": 'sku:A OR sku:"Q\\"1" OR sku:GHOST'}
    assert results[0].ok and results[0].external_ids == {
        "variant_id": "gid://shopify/ProductVariant/1", "product_id": "gid://shopify/Product/10",
        "inventory_item_id": "gid://shopify/InventoryItem/1",
    }
    assert results[1].ok and shop.by_sku('Q"1').price == "6.00"
    assert (results[2].outcome, results[2].code, results[2].listed) == (Outcome.PERMANENT, "unlisted", False)


def test_a_sku_held_by_two_variants_is_not_guessed(shop):
    shop.variants = [Variant("A", 1, 10), Variant("A", 2, 11)]
    results = adapter().push([price("A", "5.00")])
    assert (results[0].outcome, results[0].code) == (Outcome.PERMANENT, "duplicate_sku")
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySku"]


def test_a_truncated_lookup_asks_again_per_sku_instead_of_calling_skus_unlisted(shop):
    # given: A, held by three variants, fills most of the answer (first = 4) and hides C; B
    # shows once, but a truncated answer cannot prove it has no twin
    shop.variants = [Variant("A", 1, 10), Variant("A", 2, 11), Variant("A", 3, 12), Variant("B", 4, 13), Variant("C", 5, 14)]

    # when
    results = adapter().push([price("A", "1.00"), price("B", "1.00"), price("C", "1.00")])

    # then: A is proven duplicated; B and C are settled one query each, then priced
    assert [(r.sku, r.outcome) for r in results] == [("A", Outcome.PERMANENT), ("B", Outcome.OK), ("C", Outcome.OK)]
    assert results[0].code == "duplicate_sku"
    assert [r.variables.get("first") for r in shop.requests] == [4, 2, 2, None]


def test_stale_stored_ids_are_looked_up_again(shop):
    # given: the listing remembers a variant the shop has since replaced
    shop.variants = [Variant("A", 5, 12)]
    old = {"variant_id": "gid://shopify/ProductVariant/1", "product_id": "gid://shopify/Product/12"}

    # when
    results = adapter().push([price("A", "5.00", ids=old)])

    # then
    assert results[0].ok and results[0].external_ids["variant_id"] == "gid://shopify/ProductVariant/5"
    assert [r.operation for r in shop.requests] == ["SyncsvcPrices", "SyncsvcVariantsBySku", "SyncsvcPrices"]


# -- stock ---------------------------------------------------------------------------------


def test_stock_is_read_then_set_with_compare_and_set(shop):
    # given
    shop.variants = [Variant("A", 1, 10, available=4)]

    # when
    results = adapter().push([stock("A", 9, ids=ids_of(shop.variants[0]))])

    # then
    assert results[0].ok and shop.variants[0].available == 9
    read, write = shop.requests
    assert read.operation == "SyncsvcInventoryLevels" and read.variables == {"ids": ["gid://shopify/InventoryItem/1"], "locationId": LOCATION}
    key = re.search(r'key: "([^"]+)"', write.query).group(1)
    assert write.variables == {"input": {
        "name": "available", "reason": "correction", "referenceDocumentUri": f"syncsvc://channels/7/inventory/{key}",
        "quantities": [{"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": LOCATION, "quantity": 9, "changeFromQuantity": 4}],
    }}


def test_stale_compare_and_set_rereads_and_retries_within_the_push(shop):
    # given: the shop sells one unit of A between our read and our first write
    shop.variants = [Variant("A", 1, 10, available=4), Variant("B", 2, 10, available=1)]

    def sale(fake):
        fake.by_sku("A").available -= 1

    shop.before_inventory_write.append(sale)

    # when
    results = adapter().push([stock("A", 9, ids=ids_of(shop.variants[0])), stock("B", 2, ids=ids_of(shop.variants[1]))])

    # then: written on the second try against the quantity read after the sale, and the sale
    # is not overwritten: A shows our 9 less the unit the shop sold meanwhile
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert [v.available for v in shop.variants] == [8, 2]
    writes = [r for r in shop.requests if r.operation == "SyncsvcSetInventory"]
    assert [[q["changeFromQuantity"] for q in w.variables["input"]["quantities"]] for w in writes] == [[4, 1], [3, 1]]
    assert [r.operation for r in shop.requests] == [
        "SyncsvcInventoryLevels", "SyncsvcSetInventory", "SyncsvcInventoryLevels", "SyncsvcSetInventory",
    ]


def test_compare_and_set_gives_up_after_bounded_retries_as_retry(shop):
    # given: a sale before every write
    shop.variants = [Variant("A", 1, 10, available=50)]
    shop.before_inventory_write.extend([lambda fake: setattr(fake.variants[0], "available", fake.variants[0].available - 1)] * 10)

    # when
    results = adapter().push([stock("A", 9, ids=ids_of(shop.variants[0]))])

    # then
    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "CHANGE_FROM_QUANTITY_STALE")
    assert sum(r.operation == "SyncsvcSetInventory" for r in shop.requests) == 4


def test_idempotency_key_is_stable_for_the_same_version_and_read(shop):
    # given: the same push twice against the same shop state (a push resent after a crash)
    def key_sent(version):
        shop.variants = [Variant("A", 1, 10, available=4)]
        shop.requests.clear()
        shop.replays.clear()
        adapter().push([stock("A", 9, version=version, ids=ids_of(shop.variants[0]))])
        write = next(r for r in shop.requests if r.operation == "SyncsvcSetInventory")
        return re.search(r'key: "([^"]+)"', write.query).group(1)

    # then
    assert key_sent(3) == key_sent(3) == idempotency_key(channel_id=7, location_id=LOCATION, entries=[("A", 3, 4, 9)])
    assert key_sent(4) != key_sent(3)
    assert idempotency_key(channel_id=7, location_id=LOCATION, entries=[("A", 3, 5, 9)]) != key_sent(3)


def test_a_resent_push_replays_instead_of_applying_twice(shop):
    # given: the first push reached the shop but its answer was lost (the worker died)
    shop.variants = [Variant("A", 1, 10, available=4)]
    adapter().push([stock("A", 9, version=3, ids=ids_of(shop.variants[0]))])
    first_key = re.search(r'key: "([^"]+)"', shop.requests[-1].query).group(1)

    # when: resent; the shop now shows what we set, so nothing needs writing
    results = adapter().push([stock("A", 9, version=3, ids=ids_of(shop.variants[0]))])

    # then
    assert results[0].ok and shop.variants[0].available == 9
    assert shop.requests[-1].operation == "SyncsvcInventoryLevels" and first_key in shop.replays


def test_a_key_whose_earlier_attempt_failed_is_replaced(shop):
    # given: the shop remembers a failed attempt under the key this push derives
    shop.variants = [Variant("A", 1, 10, available=4)]
    failed_key = idempotency_key(channel_id=7, location_id=LOCATION, entries=[("A", 3, 4, 9)])
    shop.replays[failed_key] = {"inventorySetQuantities": {"userErrors": [{
        "code": "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", "field": None,
        "message": "A previous request with this idempotency key failed. Retry with a new idempotency key."}]}}

    # when
    results = adapter().push([stock("A", 9, version=3, ids=ids_of(shop.variants[0]))])

    # then: written under a new key
    assert results[0].ok and shop.variants[0].available == 9
    keys = [re.search(r'key: "([^"]+)"', r.query).group(1) for r in shop.requests if r.operation == "SyncsvcSetInventory"]
    assert keys[0] == failed_key and keys[1] != failed_key and len(keys) == 2


def test_a_concurrent_request_under_the_same_key_is_retried_later(shop):
    shop.variants = [Variant("A", 1, 10, available=4)]
    key = idempotency_key(channel_id=7, location_id=LOCATION, entries=[("A", 3, 4, 9)])
    shop.replays[key] = {"inventorySetQuantities": {"userErrors": [{
        "code": "IDEMPOTENCY_CONCURRENT_REQUEST", "field": None, "message": "This request is currently in progress, please try again."}]}}
    results = adapter().push([stock("A", 9, version=3, ids=ids_of(shop.variants[0]))])
    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "IDEMPOTENCY_CONCURRENT_REQUEST")


def test_unresolved_stock_skus_are_looked_up_with_their_levels(shop):
    # given
    shop.variants = [Variant("A", 1, 10, available=2), Variant("N", 2, 10, available=None)]

    # when
    results = adapter().push([stock("A", 6), stock("N", 1), stock("GHOST", 1)])

    # then
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySkuWithStock", "SyncsvcSetInventory"]
    assert results[0].ok and results[0].external_ids == ids_of(shop.variants[0])
    assert (results[1].outcome, results[1].code) == (Outcome.PERMANENT, "ITEM_NOT_STOCKED_AT_LOCATION")
    assert (results[2].outcome, results[2].code, results[2].listed) == (Outcome.PERMANENT, "unlisted", False)


def test_the_first_location_is_looked_up_once_and_cached(shop):
    # given: no location in the settings
    shop.variants = [Variant("A", 1, 10, available=2)]
    context = FakeContext()
    config = ChannelConfig(id=7, name="s", kind="shopify", base_url=BASE_URL, credentials={"access_token": "t"})

    # when
    ShopifyAdapter(config, context).push([stock("A", 3, ids=ids_of(shop.variants[0]))])
    ShopifyAdapter(config, context).push([stock("A", 4, ids=ids_of(shop.variants[0]))])

    # then
    assert [r.operation for r in shop.requests].count("SyncsvcFirstLocation") == 1
    assert context.cache == {"location_id": LOCATION}


def test_a_sku_missing_for_stock_is_not_looked_up_again_for_its_price(shop):
    results = adapter().push([price("GHOST", "4.00"), stock("GHOST", 5)])
    assert [(r.code, r.listed) for r in results] == [("unlisted", False)] * 2
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySkuWithStock"]


def test_a_cached_location_the_shop_lost_is_forgotten(shop):
    # given: the cached location was deleted in the shop
    shop.variants = [Variant("A", 1, 10, available=2)]
    context = FakeContext(cache={"location_id": "gid://shopify/Location/99"})
    config = ChannelConfig(id=7, name="s", kind="shopify", base_url=BASE_URL, credentials={"access_token": "t"})
    shop.canned.extend([
        response(200, {"data": {"nodes": [{"id": shop.variants[0].item_id, "inventoryLevel": {"quantities": [{"name": "available", "quantity": 2}]}}]},
                       "extensions": cost_extension(3)}),
        response(200, {"data": {"inventorySetQuantities": {"userErrors": [
            {"code": "INVALID_LOCATION", "field": ["input", "quantities", "0", "locationId"], "message": "The specified location could not be found."}]}},
            "extensions": cost_extension(10)}),
    ])

    # when
    results = ShopifyAdapter(config, context).push([stock("A", 3, ids=ids_of(shop.variants[0]))])

    # then
    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "INVALID_LOCATION")
    assert context.cache == {}


def test_a_mixed_batch_writes_stock_and_prices(shop):
    shop.variants = [Variant("A", 1, 10, available=2)]
    results = adapter().push([price("A", "4.00"), stock("A", 5)])
    assert [r.ok for r in results] == [True, True]
    # one lookup serves both aspects
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySkuWithStock", "SyncsvcSetInventory", "SyncsvcPrices"]


# -- throttling and errors -----------------------------------------------------------------


def test_a_throttled_answer_gives_throttled_results_and_tells_the_bucket(shop):
    # given
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 11)]
    shop.canned.append(response(200, {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 22, "actualQueryCost": None,
                                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 5.0, "restoreRate": 100.0}}},
    }))
    context = FakeContext()

    # when
    results = adapter(context).push([price(v.sku, "2.00", ids=ids_of(v)) for v in shop.variants])

    # then
    assert [(r.outcome, r.code) for r in results] == [(Outcome.THROTTLED, "THROTTLED")] * 2
    assert results[0].retry_after == pytest.approx((22 - 5) / 100)
    assert context.observed == [{"available": 5.0, "maximum": 2000.0, "restore_rate": 100.0, "refund": 22.0}]


def test_an_empty_bucket_sends_nothing(shop):
    shop.variants = [Variant("A", 1, 10)]
    results = adapter(FakeContext(waits=[3.5])).push([price("A", "2.00", ids=ids_of(shop.variants[0]))])
    assert (results[0].outcome, results[0].retry_after) == (Outcome.THROTTLED, 3.5)
    assert shop.requests == []


def test_a_throttle_midway_keeps_what_was_delivered(shop):
    # given: the bucket pays for the first document, not the second
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 11)]
    context = FakeContext(waits=[0.0, 2.0])

    # when
    results = adapter(context, price_mutations_per_request=1).push([price(v.sku, "2.00", ids=ids_of(v)) for v in shop.variants])

    # then
    assert [(r.outcome, r.retry_after) for r in results] == [(Outcome.OK, None), (Outcome.THROTTLED, 2.0)]


def test_each_answer_reports_the_bucket_state_and_refunds_the_unspent_cost(shop):
    # given
    shop.variants = [Variant("A", 1, 10)]
    shop.canned.append(response(200, {"data": {"p0": {"userErrors": []}}, "extensions": cost_extension(11, available=1234.0, actual=4)}))
    context = FakeContext()

    # when
    adapter(context).push([price("A", "2.00", ids=ids_of(shop.variants[0]))])

    # then
    assert context.observed == [{"available": 1234.0, "maximum": 2000.0, "restore_rate": 100.0, "refund": 7.0}]


def test_a_429_pauses_every_worker_and_throttles(shop):
    shop.variants = [Variant("A", 1, 10)]
    shop.canned.append(response(429, {"errors": "Throttled"}, {"Retry-After": "2.0"}))
    context = FakeContext()
    results = adapter(context).push([price("A", "2.00", ids=ids_of(shop.variants[0]))])
    assert (results[0].outcome, results[0].code, results[0].retry_after) == (Outcome.THROTTLED, "http_429", 2.0)
    assert context.paused == [2.0]


def test_a_401_is_resent_once_then_auth(shop):
    # given: two refusals
    shop.variants = [Variant("A", 1, 10)]
    shop.canned.extend([response(401, {"errors": "[API] Invalid API key or access token"})] * 2)

    # when
    results = adapter().push([price("A", "2.00", ids=ids_of(shop.variants[0]))])

    # then
    assert (results[0].outcome, results[0].code) == (Outcome.AUTH, "http_401")
    assert len(shop.requests) == 2


def test_a_single_stray_401_is_delivered_on_the_resend(shop):
    shop.variants = [Variant("A", 1, 10)]
    shop.canned.append(response(401, {"errors": "[API] Invalid API key or access token"}))
    results = adapter().push([price("A", "2.00", ids=ids_of(shop.variants[0]))])
    assert results[0].ok and len(shop.requests) == 2


def test_a_5xx_is_retried_later_and_stops_the_push(shop):
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 11)]
    shop.canned.append(response(503, {"errors": "unavailable"}, {"Retry-After": "4"}))
    results = adapter(price_mutations_per_request=1).push([price(v.sku, "2.00", ids=ids_of(v)) for v in shop.variants])
    assert [(r.outcome, r.code, r.retry_after) for r in results] == [(Outcome.RETRY, "http_503", 4.0)] * 2
    assert len(shop.requests) == 1


def test_a_network_error_is_retry(shop, monkeypatch):
    def refuse(*args, **kwargs):
        raise requests.ConnectionError("connection refused")

    monkeypatch.setattr(shop, "post", refuse)
    results = adapter().push([price("A", "2.00", ids={"variant_id": "v", "product_id": "p"})])
    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "network_error")


def test_access_denied_is_auth_and_unknown_graphql_errors_are_permanent(shop):
    shop.variants = [Variant("A", 1, 10)]
    item = price("A", "2.00", ids=ids_of(shop.variants[0]))
    shop.canned.append(response(200, {"errors": [{"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}]}))
    assert adapter().push([item])[0].outcome is Outcome.AUTH
    shop.canned.append(response(200, {"errors": [{"message": "Field 'x' doesn't exist", "extensions": {"code": "undefinedField"}}]}))
    result = adapter().push([item])[0]
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "undefinedField")


def test_max_cost_exceeded_splits_the_call(shop):
    # given: the shop finds the two-product document too expensive, once
    shop.variants = [Variant("A", 1, 10), Variant("B", 2, 11)]
    shop.canned.append(response(200, {"errors": [{"message": "Query cost is 2000, which exceeds the single query max cost limit (1000).",
                                                   "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 2000, "maxCost": 1000}}]}))

    # when
    results = adapter().push([price(v.sku, "2.00", ids=ids_of(v)) for v in shop.variants])

    # then
    assert [r.ok for r in results] == [True, True]
    assert [requested_cost(r.query) for r in shop.requests] == [22, 11, 11]


def test_content_is_not_a_shopify_aspect_yet(shop):
    item = PushItem(sku="A", aspect="content", version=1, title="T")
    assert adapter().push([item])[0].code == "unsupported_aspect"


# -- fetch ---------------------------------------------------------------------------------


def test_fetch_reads_price_and_stock_at_the_location(shop):
    # given
    shop.variants = [Variant("A", 1, 10, price="7.25", available=3), Variant("B", 2, 10, price="1.00", available=None)]

    # when
    live = adapter().fetch(["A", "B", "GHOST"])

    # then
    assert [r.operation for r in shop.requests] == ["SyncsvcVariantsBySkuWithStock"]
    assert {sku: (v.listed, v.price, v.available) for sku, v in live.items()} == {
        "A": (True, Decimal("7.25"), 3), "B": (True, Decimal("1.00"), None), "GHOST": (False, None, None),
    }
    assert live["A"].external_ids == ids_of(shop.variants[0])


def test_fetch_batches_by_cost(shop):
    shop.variants = [Variant(f"S{n}", n, 10) for n in range(450)]
    live = adapter(lookup_batch_size=250).fetch([v.sku for v in shop.variants])
    assert all(v.listed for v in live.values())
    # 5 points a variant: at most 199 (198 SKUs and one spare) under the 1000-point limit
    assert [r.variables["first"] for r in shop.requests] == [199, 199, 55]


def test_fetch_raises_when_throttled(shop):
    with pytest.raises(ShopifyCallError) as raised:
        adapter(FakeContext(waits=[2.0])).fetch(["A"])
    assert raised.value.outcome is Outcome.THROTTLED and raised.value.retry_after == 2.0
