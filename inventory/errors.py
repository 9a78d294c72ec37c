from __future__ import annotations


class InventoryError(Exception):
    """A request the catalog or ledger refuses; `field` names the input at fault."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(InventoryError):
    status = 404


class Conflict(InventoryError):
    status = 409


class BulkRowsError(InventoryError):
    """Some rows of a list request are bad; `rows` maps row index -> {field: message}."""

    def __init__(self, rows: dict[int, dict[str, str]]):
        super().__init__(f"{len(rows)} row(s) refused; nothing was written")
        self.rows = rows
