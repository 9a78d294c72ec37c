"""A Magento catalog: products with store-scoped prices, and MSI source items.

Rules kept from Magento 2.4:
- `POST /V1/products/base-prices` (`BasePriceStorage::update`) checks every row, answers one
  `{message, parameters}` per problem and saves the rows without problems: an unknown SKU or a
  missing/negative price is `Invalid attribute %fieldName = %fieldValue.`, an unknown store
  `Requested store is not found. Row ID: SKU = %SKU, Store ID: %storeId.`
- `POST /V1/products/base-prices-information` throws for any unknown SKU (404).
- `POST /V1/inventory/source-items` validates every item first and saves all or none
  (`Validation Failed` with `errors`), including MSI's rule that an item with quantity <= 0
  cannot be "In Stock". Items for SKUs without a product are saved, as MSI does.
- Prices: with the default price scope (global) every write lands on the global value
  (store 0); with `price_scope` "website" a write lands on the store it names and reads fall
  back to the global value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import MagentoError

DEFAULT_SOURCE = "default"
ADMIN_STORE_ID = 0
DEFAULT_STORE_ID = 1
FIRST_PRODUCT_ID = 1
IN_STOCK, OUT_OF_STOCK = 1, 0


def magento_datetime(timestamp: float) -> str:
    """Magento's `Y-m-d H:i:s`, in UTC."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def php_text(value: Any) -> str:
    """A value as PHP prints it into a message parameter (null is "", 12.0 is "12")."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def number(value: Decimal | float) -> float | int:
    """A Magento decimal in JSON: whole values print without a fraction, like PHP floats."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


@dataclass
class MagentoProduct:
    id: int
    sku: str
    name: str
    created_at: float
    updated_at: float
    type_id: str = "simple"
    attribute_set_id: int = 4
    status: int = 1
    visibility: int = 4
    weight: float | None = None
    prices: dict[int, Decimal] = field(default_factory=dict)
    custom_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceItem:
    sku: str
    source_code: str
    quantity: float
    status: int

    def as_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "source_code": self.source_code,
            "quantity": number(self.quantity),
            "status": self.status,
        }


class MagentoCatalog:
    """The products and source items of one store; not locked itself (the store's lock is)."""

    def __init__(self) -> None:
        self.products: dict[str, MagentoProduct] = {}
        self.source_items: dict[tuple[str, str], SourceItem] = {}
        self.writes: dict[str, int] = {}
        self.touched_at: dict[str, float] = {}
        self._next_id = FIRST_PRODUCT_ID

    # --- products -----------------------------------------------------------------------------

    def create_product(self, sku: str, name: str, now: float) -> MagentoProduct:
        product = MagentoProduct(id=self._next_id, sku=sku, name=name, created_at=now, updated_at=now)
        self._next_id += 1
        self.products[sku] = product
        return product

    def price(self, product: MagentoProduct, store_id: int) -> Decimal | None:
        return product.prices.get(store_id, product.prices.get(ADMIN_STORE_ID))

    def record_write(self, sku: str, now: float) -> None:
        self.writes[sku] = self.writes.get(sku, 0) + 1
        self.touched_at[sku] = now
        product = self.products.get(sku)
        if product is not None:
            product.updated_at = now

    def source_item(self, sku: str, source_code: str = DEFAULT_SOURCE) -> SourceItem | None:
        return self.source_items.get((sku, source_code))

    def skus(self) -> list[str]:
        known = list(self.products)
        known += [sku for sku, _ in self.source_items if sku not in self.products]
        return list(dict.fromkeys(known))

    # --- base prices --------------------------------------------------------------------------

    def update_base_prices(
        self, prices: list[dict[str, Any]], store_ids: set[int], price_scope: str, now: float
    ) -> list[dict[str, Any]]:
        """Save the valid rows; answer the failures of the others."""
        failures: list[dict[str, Any]] = []
        valid = []
        for row in prices:
            sku, price, store_id = row.get("sku"), row.get("price"), row.get("store_id")
            row_failed = False
            if not sku or sku not in self.products:
                failures.append(
                    {"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", php_text(sku)]}
                )
                row_failed = True
            if price is None or price < 0:
                failures.append(
                    {"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["Price", php_text(price)]}
                )
                row_failed = True
            if store_id not in store_ids:
                # Built with its values, so the message arrives filled in.
                failures.append(
                    {
                        "message": "Requested store is not found."
                        f" Row ID: SKU = {php_text(sku)}, Store ID: {php_text(store_id)}.",
                        "parameters": [php_text(sku), php_text(store_id)],
                    }
                )
                row_failed = True
            if not row_failed:
                valid.append(row)
        for row in valid:
            product = self.products[row["sku"]]
            scope = ADMIN_STORE_ID if price_scope == "global" else row["store_id"]
            product.prices[scope] = Decimal(str(row["price"]))
            self.record_write(product.sku, now)
        return failures

    def base_prices_information(self, skus: list[str]) -> list[dict[str, Any]]:
        unknown = [sku for sku in dict.fromkeys(skus) if sku not in self.products]
        if unknown:
            message = (
                "Requested product doesn't exist: %sku" if len(unknown) == 1 else "Requested products don't exist: %sku"
            )
            raise MagentoError(404, message, {"sku": ", ".join(unknown)})
        answer = []
        for sku in dict.fromkeys(skus):
            for store_id, price in sorted(self.products[sku].prices.items()):
                answer.append({"price": number(price), "store_id": store_id, "sku": sku})
        return answer

    # --- source items -------------------------------------------------------------------------

    def save_source_items(self, items: list[dict[str, Any]], source_codes: set[str], now: float) -> None:
        """`SourceItemsSave::execute`: validate all, then save all."""
        errors: list[dict[str, Any]] = []
        for item in items:
            errors.extend(source_item_errors(item))
        if errors:
            raise MagentoError(400, "Validation Failed", errors=errors)
        if any(item["source_code"] not in source_codes for item in items):
            # The foreign key to inventory_source fails and the whole save is rolled back.
            raise MagentoError(400, "Could not save Source Item")
        for item in items:
            key = (item["sku"], item["source_code"])
            self.source_items[key] = SourceItem(
                item["sku"], item["source_code"], float(item["quantity"]), int(item["status"])
            )
            self.record_write(item["sku"], now)


def _field_error(message: str, name: str) -> dict[str, Any]:
    return {"message": message, "parameters": {"field": name}}


def source_item_errors(item: dict[str, Any]) -> list[dict[str, Any]]:
    """MSI's source item validators (SKU, source code, quantity, status, consistency)."""
    errors = []
    sku = item.get("sku")
    if sku is None or not str(sku).strip():
        errors.append(_field_error('"%field" can not be empty.', "sku"))
    elif str(sku) != str(sku).strip():
        errors.append(_field_error('"%field" can not contain leading or trailing spaces.', "sku"))
    source_code = str(item.get("source_code") or "")
    if not source_code.strip():
        errors.append(_field_error('"%field" can not be empty.', "source_code"))
    elif re.search(r"\s", source_code):
        errors.append(_field_error('"%field" can not contain whitespaces.', "source_code"))
    quantity, status = item.get("quantity"), item.get("status")
    if quantity is None:
        errors.append(_field_error('"%field" should be numeric.', "quantity"))
    if status is None:
        errors.append(_field_error('"%field" should be numeric.', "status"))
    elif status not in (IN_STOCK, OUT_OF_STOCK):
        errors.append(_field_error('"%field" should a known status.', "status"))
    if quantity is not None and quantity <= 0 and status == IN_STOCK:
        errors.append(
            {
                "message": 'Product cannot have "%status" "%in_stock" while product "%quantity" equals or below zero',
                "parameters": {"status": "status", "in_stock": "In Stock", "quantity": "quantity"},
            }
        )
    return errors


def decimal_price(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
