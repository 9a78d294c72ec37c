"""Writes to the catalog and the ledger. Each records its changes in the same transaction."""
from .catalog import product_create, product_delete, product_update, variant_update
from .changes import changes_record
from .ledger import stock_adjust, stock_count
from .prices import PriceRow, prices_bulk_set

__all__ = [
    "PriceRow",
    "changes_record",
    "prices_bulk_set",
    "product_create",
    "product_delete",
    "product_update",
    "stock_adjust",
    "stock_count",
    "variant_update",
]
