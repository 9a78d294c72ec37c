"""The `shopify` kind: prices and stock through the Admin GraphQL API.

`POST {base_url}/admin/api/{api_version}/graphql.json` with `X-Shopify-Access-Token`.

Settings (all optional):
- `api_version`: Admin API version, default `2026-10` (`changeFromQuantity` and `@idempotent`
  are required from 2026-04).
- `location_id`: the location whose `available` stock we set (a `gid://shopify/Location/...`
  or its number); default the shop's first active location, looked up once and cached.
- `plan`: `standard` | `advanced` | `plus` | `commerce_components`: the cost bucket's restore
  rate before the shop reports its own (100, 200, 1000, 2000 points/s).
- `restore_rate`: points/s, overrides `plan`. `bucket_size`: points, default 2000.
- `max_query_cost`: the most one document may cost, default 1000 (Shopify's single-query limit).
- `price_mutations_per_request`: products per price document, default 25 (see `prices.py`).
- `lookup_batch_size`: SKUs per lookup query, default 100.
- `batch_size` (read by the flush): items per push, default 250 (Shopify's input limit).

Per push: SKUs without ids are looked up by SKU (ids come back in `PushResult.external_ids`;
a SKU the shop lacks is PERMANENT `unlisted`, `listed=False`); stock is written first
(overselling costs more than a stale price), with a compare-and-set against a fresh read
(`inventory.py`); then prices, one mutation per product (`prices.py`). Every call first takes
its cost from the channel's global bucket; when the bucket or the shop says wait, the push
stops and what was not sent is THROTTLED with that wait (never a sleep).

Bulk operations (`bulkOperationRunMutation` over a staged upload) answer asynchronously, per
file rather than per SKU within a push, so the flush does not use them; the nightly catalog
refresh does (`refresh_start` / `refresh_poll`, see `bulk.py`): content (title, description,
mapped attributes as metafields, media links) as one `productUpdate` per product.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from ..base import (
    ChannelAdapter,
    ChannelConfig,
    ChannelContext,
    LiveValue,
    Outcome,
    PushItem,
    PushResult,
    RefreshPoll,
)
from .bulk import DEFAULT_CHUNK_SIZE, BulkRefresh
from .client import ShopifyClient
from .documents import FIRST_LOCATION
from .errors import LineOutcome, ShopifyCallError
from .inventory import CompareAndSet, StockLine, quantity_entry, write_cost
from .lookup import Level, Lookup, Variant, levels_by_item, variants_by_sku
from .prices import DEFAULT_MUTATIONS_PER_REQUEST, PriceLine, price_variables, prices_set

# Restore rates by plan (shopify.dev, "GraphQL Admin API rate limits"); a setting overrides.
PLAN_RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "commerce_components": 2000.0}
DEFAULT_BUCKET_SIZE = 2000.0
DEFAULT_MAX_QUERY_COST = 1000
DEFAULT_LOOKUP_BATCH = 100
LOCATION_CACHE = "location_id"
LOCATION_CACHE_TTL_S = 24 * 3600.0
# Shopify's answers to ids that went stale (a product recreated, a variant moved): look the
# SKU up again rather than give it up.
STALE_ID_CODES = frozenset({"PRODUCT_DOES_NOT_EXIST", "PRODUCT_VARIANT_DOES_NOT_EXIST", "MUST_BE_FOR_THIS_PRODUCT"})


def location_gid(value) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/Location/{text}"


class ShopifyAdapter(ChannelAdapter):
    """Pushes prices and stock to a Shopify shop; reads them back with `fetch`."""

    kind = "shopify"
    aspects = frozenset({"price", "inventory"})
    batch_size = 250
    credential_fields = ("access_token",)
    default_rate_per_s = PLAN_RESTORE_RATES["standard"]
    default_burst = int(DEFAULT_BUCKET_SIZE)
    supports_bulk_refresh = True
    refresh_chunk_size = DEFAULT_CHUNK_SIZE  # products per bulk mutation: see bulk.py

    @classmethod
    def bucket_defaults(cls, settings: dict) -> dict[str, tuple[float, float]]:
        """One cost bucket in Shopify points: the plan's restore rate and the bucket size,
        until the shop's own `throttleStatus` says otherwise."""
        plan = str(settings.get("plan") or "standard").lower()
        rate = settings.get("restore_rate") or PLAN_RESTORE_RATES.get(plan, PLAN_RESTORE_RATES["standard"])
        return {"default": (float(rate), float(settings.get("bucket_size") or DEFAULT_BUCKET_SIZE))}

    def __init__(self, config: ChannelConfig, context: ChannelContext):
        super().__init__(config, context)
        self.client = ShopifyClient(config, context)
        self.max_cost = int(self.setting("max_query_cost", DEFAULT_MAX_QUERY_COST))
        self.lookup_batch = int(self.setting("lookup_batch_size", DEFAULT_LOOKUP_BATCH))

    # -- push -----------------------------------------------------------------------------

    def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Deliver stock, then prices; one result per item, in the items' order."""
        run = _Push(items)
        for index, item in enumerate(items):
            if item.aspect not in self.aspects:
                run.settle(index, LineOutcome(Outcome.PERMANENT, "unsupported_aspect", f"shopify takes no {item.aspect}"))
        try:
            self._push_stock(run)
            self._push_prices(run)
        except ShopifyCallError as stop:
            run.stop(stop)
        return run.results()

    def _push_stock(self, run: _Push) -> None:
        indexes = [i for i in run.open() if run.items[i].aspect == "inventory"]
        for index in [i for i in indexes if run.items[i].available is None]:
            run.settle(index, LineOutcome(Outcome.PERMANENT, "missing_quantity", "no available quantity to send"))
        indexes = [i for i in indexes if i in run.open()]
        if not indexes:
            return
        location_id = self._location_id()
        # Resolved SKUs: read their levels by inventory item; ids the shop no longer knows,
        # and SKUs never resolved, are looked up by SKU (which reads the level too).
        # Each read goes only when the bucket also holds the write it is for: a read spent on a
        # write that must then wait is read again next time, and the write never goes.
        known = {i: run.items[i].external_ids.get("inventory_item_id") for i in indexes}
        levels = levels_by_item(
            self.client, [v for v in known.values() if v], location_id=location_id, max_cost=self.max_cost,
            then=write_cost(),
        ) if any(known.values()) else {}
        variants: dict[int, tuple[str, Level]] = {
            i: (item_id, levels[item_id]) for i, item_id in known.items() if item_id and item_id in levels
        }
        unresolved = [i for i in indexes if i not in variants]
        if unresolved:
            lookup = variants_by_sku(
                self.client, [run.items[i].sku for i in unresolved], location_id=location_id,
                max_cost=self.max_cost, batch=self.lookup_batch, then=write_cost(),
            )
            for index in unresolved:
                variant = self._resolved(run, index, lookup, location_id)
                if variant is not None:
                    variants[index] = (variant.inventory_item_id, variant.level)
        lines, read = [], {}
        for index, (item_id, level) in variants.items():
            item = run.items[index]
            if not level.stocked or level.available is None:
                run.settle(index, LineOutcome(
                    Outcome.PERMANENT, "ITEM_NOT_STOCKED_AT_LOCATION", f"{item.sku} is not stocked at {location_id}"
                ))
                continue
            if item.external_ids.get("location_id") != location_id:
                run.ids_found.setdefault(item.sku, {})["location_id"] = location_id
            lines.append(StockLine(index, item.sku, item.version, item_id, int(item.available)))
            read[index] = level.available
        try:
            CompareAndSet(
                self.client, channel_id=self.config.id, location_id=location_id, max_cost=self.max_cost, done=run.outcomes
            ).run(lines, read)
        finally:
            self._forget_vanished_location(run, [line.key for line in lines])

    def _forget_vanished_location(self, run: _Push, indexes: list[int]) -> None:
        """A cached location the shop no longer has: look it up again next time (RETRY); a
        configured one is for a person to fix (PERMANENT, as Shopify said)."""
        vanished = [i for i in indexes if run.outcomes.get(i) and run.outcomes[i].code == "INVALID_LOCATION"]
        if not vanished or self.setting("location_id", ""):
            return
        self.context.cache_delete(LOCATION_CACHE)
        for index in vanished:
            run.outcomes[index] = LineOutcome(Outcome.RETRY, "INVALID_LOCATION", run.outcomes[index].message)

    def _push_prices(self, run: _Push) -> None:
        indexes = [i for i in run.open() if run.items[i].aspect == "price"]
        for index in [i for i in indexes if run.items[i].price is None]:
            run.settle(index, LineOutcome(Outcome.PERMANENT, "missing_price", "no price to send"))
        indexes = [i for i in indexes if i in run.open()]
        if not indexes:
            return
        for index in [i for i in indexes if run.items[i].sku in run.not_found]:
            # Looked up for its stock a moment ago: the same answer, without asking again.
            outcome, listed = run.not_found[run.items[index].sku]
            run.settle(index, outcome, listed=listed)
        indexes = [i for i in indexes if i in run.open()]
        ids = {i: self._known_ids(run, i) for i in indexes}
        unresolved = [i for i in indexes if not ids[i]]
        if unresolved:
            lookup = variants_by_sku(
                self.client, [run.items[i].sku for i in unresolved], max_cost=self.max_cost, batch=self.lookup_batch
            )
            for index in unresolved:
                variant = self._resolved(run, index, lookup)
                if variant is not None:
                    ids[index] = (variant.variant_id, variant.product_id)
        resolved = {i: v for i, v in ids.items() if v}
        self._set_prices(run, resolved)
        # Ids held from an earlier push that the shop no longer knows: look up once more.
        stale = [i for i in resolved if run.outcomes.get(i) and run.outcomes[i].code in STALE_ID_CODES
                 and run.items[i].sku not in run.looked_up]
        if stale:
            lookup = variants_by_sku(
                self.client, [run.items[i].sku for i in stale], max_cost=self.max_cost, batch=self.lookup_batch
            )
            again = {}
            for index in stale:
                run.outcomes.pop(index)
                variant = self._resolved(run, index, lookup)
                if variant is not None:
                    again[index] = (variant.variant_id, variant.product_id)
            self._set_prices(run, again)

    def _set_prices(self, run: _Push, ids: dict[int, tuple[str, str]]) -> None:
        lines = [
            PriceLine(i, run.items[i].sku, variant_id, product_id, run.items[i].price, run.items[i].compare_at_price)
            for i, (variant_id, product_id) in ids.items()
        ]
        per_request = int(self.setting("price_mutations_per_request", DEFAULT_MUTATIONS_PER_REQUEST))
        prices_set(self.client, lines, per_request=per_request, done=run.outcomes)

    def _known_ids(self, run: _Push, index: int) -> tuple[str, str] | None:
        item = run.items[index]
        held = {**item.external_ids, **run.ids_found.get(item.sku, {})}
        if held.get("variant_id") and held.get("product_id"):
            return held["variant_id"], held["product_id"]
        return None

    def _resolved(self, run: _Push, index: int, lookup: Lookup, location_id: str | None = None) -> Variant | None:
        """The SKU's variant from a lookup, with its ids noted for the result; or the item
        settled as unlisted, duplicated or not yet known."""
        sku = run.items[index].sku
        run.looked_up.add(sku)
        variant = lookup.found.get(sku)
        if variant is not None and sku not in lookup.duplicated:
            run.ids_found.setdefault(sku, {}).update(variant.external_ids(location_id))
            return variant
        listed = None
        if sku in lookup.duplicated:
            outcome = LineOutcome(Outcome.PERMANENT, "duplicate_sku", f"several variants in the shop have SKU {sku}")
        elif sku in lookup.unsure:
            outcome = LineOutcome(Outcome.RETRY, "lookup_incomplete", f"the shop's answer for {sku} was truncated")
        else:
            outcome, listed = LineOutcome(Outcome.PERMANENT, "unlisted", f"no variant with SKU {sku} in the shop"), False
        run.settle(index, outcome, listed=listed)
        run.not_found[sku] = (outcome, listed)
        return None

    def _location_id(self) -> str:
        configured = self.setting("location_id", "")
        if configured:
            return location_gid(configured)
        cached = self.context.cache_get(LOCATION_CACHE)
        if cached:
            return cached
        nodes = self.client.execute(FIRST_LOCATION).field("locations").get("nodes") or []
        if not nodes:
            raise ShopifyCallError(Outcome.PERMANENT, "no_location", "the shop has no active location to stock")
        location_id = nodes[0]["id"]
        self.context.cache_set(LOCATION_CACHE, location_id, LOCATION_CACHE_TTL_S)
        return location_id

    # -- catalog refresh (bulk) -------------------------------------------------------------

    def refresh_start(self, items: Sequence[PushItem]) -> dict:
        """Start one bulk mutation for these content items (`bulk.py`); its remote state.
        Raises ChannelThrottled while another bulk mutation runs on the shop or the cost
        bucket says wait."""
        return self._bulk().start(items)

    def refresh_poll(self, state: dict) -> RefreshPoll:
        """Where the bulk mutation of `state` stands; when done, per SKU ok or failed."""
        return self._bulk().poll(state)

    def _bulk(self) -> BulkRefresh:
        return BulkRefresh(self.client, channel_id=self.config.id, max_cost=self.max_cost,
                           channel_settings=self.config.settings)

    # -- preview (shadow channels) ------------------------------------------------------

    def preview(self, items: Sequence[PushItem]) -> dict[str, dict]:
        """Per SKU the mutation variables the push would send, by its own builders, with no
        call to the shop: ids come from the listing (unresolved SKUs would be looked up by
        SKU first), the location from the settings or the shared cache, and the stock's
        `changeFromQuantity` is what the push reads just before writing (null here)."""
        location_id = location_gid(self.setting("location_id", "")) if self.setting("location_id", "") else (
            self.context.cache_get(LOCATION_CACHE))
        previews: dict[str, dict] = {}
        for index, item in enumerate(items):
            ids = item.external_ids
            entry = previews.setdefault(item.sku, {})
            if item.aspect == "price" and item.price is not None:
                line = PriceLine(index, item.sku, ids.get("variant_id"), ids.get("product_id"), item.price,
                                 item.compare_at_price)
                entry["productVariantsBulkUpdate"] = price_variables([[line]])
            elif item.aspect == "inventory" and item.available is not None:
                line = StockLine(index, item.sku, item.version, ids.get("inventory_item_id"), int(item.available))
                entry["inventorySetQuantities"] = quantity_entry(line, ids.get("location_id") or location_id, None)
            if not ids.get("variant_id"):
                entry["lookup"] = f"productVariants(query: sku:{item.sku})"
        return previews

    # -- fetch ----------------------------------------------------------------------------

    def fetch(self, skus: Sequence[str]) -> dict[str, LiveValue]:
        """Price and `available` at the location per SKU, as the shop shows them now.

        Raises `ShopifyCallError` (THROTTLED with `retry_after`, RETRY, AUTH, ...) when the
        shop cannot be read now.
        """
        if not skus:
            return {}
        location_id = self._location_id()
        lookup = variants_by_sku(self.client, skus, location_id=location_id, max_cost=self.max_cost, batch=self.lookup_batch)
        if lookup.unsure:
            raise ShopifyCallError(Outcome.RETRY, "lookup_incomplete", f"truncated answers for {sorted(lookup.unsure)[:5]}")
        live = {}
        for sku in skus:
            variant = lookup.found.get(sku)
            if variant is None:
                live[sku] = LiveValue(sku, listed=False)
                continue
            level = variant.level or Level(stocked=False)
            live[sku] = LiveValue(sku, True, variant.price, level.available, variant.external_ids(location_id))
        return live


class _Push:
    """What one push has settled so far: per item index, its outcome and the ids found."""

    def __init__(self, items: Sequence[PushItem]):
        self.items = list(items)
        self.outcomes: dict[int, LineOutcome] = {}
        self.unlisted: set[int] = set()
        self.ids_found: dict[str, dict] = {}
        self.looked_up: set[str] = set()
        self.not_found: dict[str, tuple[LineOutcome, bool | None]] = {}  # SKU -> how its lookup ended
        self.stopped: ShopifyCallError | None = None

    def open(self) -> list[int]:
        return [i for i in range(len(self.items)) if i not in self.outcomes]

    def settle(self, index: int, outcome: LineOutcome, *, listed: bool | None = None) -> None:
        self.outcomes[index] = outcome
        if listed is False:
            self.unlisted.add(index)

    def stop(self, error: ShopifyCallError) -> None:
        """A call failed as a whole: every item not settled shares its fate."""
        self.stopped = error

    def results(self) -> list[PushResult]:
        acknowledged_at = datetime.now(timezone.utc)
        results = []
        for index, item in enumerate(self.items):
            outcome = self.outcomes.get(index)
            found = self.ids_found.get(item.sku)
            new_ids = found if found and any(item.external_ids.get(k) != v for k, v in found.items()) else None
            if outcome is None:
                error = self.stopped or ShopifyCallError(Outcome.RETRY, "not_sent", "the push ended before this item")
                results.append(PushResult(item.sku, item.aspect, error.outcome, error.code, error.message,
                                          error.retry_after, external_ids=new_ids))
                continue
            results.append(PushResult(
                item.sku, item.aspect, outcome.outcome, outcome.code, outcome.message,
                acknowledged_at=acknowledged_at if outcome.ok else None,
                external_ids=new_ids,
                listed=False if index in self.unlisted else (True if outcome.ok else None),
            ))
        return results
