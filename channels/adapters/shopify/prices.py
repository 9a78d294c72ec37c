"""Prices: one `productVariantsBulkUpdate` per product, many products per HTTP round trip.

The call plan, and why it is the cheapest valid one:
- Shopify sets variant prices per product: `productVariantsBulkUpdate(productId, variants)`
  takes every variant of ONE product (up to 250) for one mutation's 10 points. So the floor
  for a batch is 10 points per distinct product in it, whatever the number of variants; we
  never send a product twice in a batch, and never one call per variant.
- Several products go into one document as aliased mutations (`p0: ... p1: ...`). Each alias
  still spends 10 (11 requested, 1 refunded), so aliasing saves round trips (latency,
  connection churn), not points. A document holds at most `price_mutations_per_request`
  products (default 25 = 275 points requested, 250 spent):
  far under the single-query limit (1000), small enough that the bucket can pay for the next
  document soon after it refills (partial progress instead of waiting for a 1000-point
  window), and short enough to run within the HTTP timeout on a real shop, where mutations
  in a document run one after another.
- The payload selects only `userErrors`: nothing else is charged or needed.
- Cheaper than this only asynchronous bulk operations (`bulkOperationRunMutation` over a
  staged JSONL upload), which do not report per SKU within a push; see the adapter docstring.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..base import Outcome
from .client import ShopifyClient, error_code, error_outcome
from .documents import price_alias, prices_update
from .errors import DELIVERED, LineOutcome, MaxCostExceeded
from .lookup import INPUT_LIMIT

DEFAULT_MUTATIONS_PER_REQUEST = 25


@dataclass(frozen=True)
class PriceLine:
    """One variant's price to set; `key` is the caller's handle for the result."""

    key: int
    sku: str
    variant_id: str
    product_id: str
    price: Decimal
    compare_at_price: Decimal | None = None


def money(value: Decimal) -> str:
    return format(value, "f")  # never exponent notation ("1E+1")


def product_groups(lines: Sequence[PriceLine]) -> list[list[PriceLine]]:
    """Lines grouped per product (one mutation each), at most 250 variants per group."""
    by_product: dict[str, list[PriceLine]] = {}
    for line in lines:
        by_product.setdefault(line.product_id, []).append(line)
    groups = []
    for group in by_product.values():
        groups.extend(group[start:start + INPUT_LIMIT] for start in range(0, len(group), INPUT_LIMIT))
    return groups


def prices_set(
    client: ShopifyClient, lines: Sequence[PriceLine], *, per_request: int, done: dict[int, LineOutcome]
) -> None:
    """Set every line's price; record each line's fate in `done` as its answer arrives.

    Raises `ShopifyCallError` when a call fails as a whole (the lines not in `done` are then
    the caller's to classify), after recording what earlier calls delivered.
    """
    groups = product_groups(lines)
    for start in range(0, len(groups), max(1, per_request)):
        _send(client, groups[start:start + max(1, per_request)], done)


def price_variables(groups: list[list[PriceLine]]) -> dict:
    """The variables of `prices_update(len(groups))`: per product its id and variants."""
    variables: dict = {}
    for n, group in enumerate(groups):
        variables[f"product{n}"] = group[0].product_id
        variables[f"variants{n}"] = [
            {
                "id": line.variant_id,
                "price": money(line.price),
                "compareAtPrice": None if line.compare_at_price is None else money(line.compare_at_price),
            }
            for line in group
        ]
    return variables


def _send(client: ShopifyClient, groups: list[list[PriceLine]], done: dict[int, LineOutcome]) -> None:
    variables = price_variables(groups)
    try:
        answer = client.execute(prices_update(len(groups)), variables)
    except MaxCostExceeded:
        if len(groups) < 2:
            raise
        middle = len(groups) // 2
        _send(client, groups[:middle], done)
        _send(client, groups[middle:], done)
        return
    scoped = {str(error["path"][0]): error for error in answer.errors if error.get("path")}
    for n, group in enumerate(groups):
        alias = price_alias(n)
        payload = answer.data.get(alias)
        if payload is None:
            error = scoped.get(alias, {"message": "no answer for this product"})
            code = error_code(error)
            for line in group:
                done[line.key] = LineOutcome(error_outcome(code), code, str(error.get("message", "")))
            continue
        for line in group:
            done[line.key] = DELIVERED
        for user_error in payload.get("userErrors") or ():
            failed = LineOutcome(Outcome.PERMANENT, str(user_error.get("code") or "user_error"), str(user_error.get("message", "")))
            index = _variant_index(user_error.get("field"))
            for line in [group[index]] if index is not None and index < len(group) else group:
                done[line.key] = failed


def _variant_index(field_path) -> int | None:
    """The variant a userError names (`["variants", "3", "price"]` -> 3); None for the product."""
    if not field_path or len(field_path) < 2 or field_path[0] != "variants":
        return None
    try:
        return int(field_path[1])
    except (TypeError, ValueError):
        return None
