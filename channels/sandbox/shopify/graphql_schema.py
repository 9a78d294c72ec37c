"""The GraphQL Admin API schema every request is validated and executed against.

It is Shopify's official 2025-01 introspection (`data/admin-2025-01.introspection.json.gz`,
the file in the shared reference, gzipped, byte-identical once unpacked: sha256 e76728a6...),
extended with what later versions added to the inventory mutations and that the reference
notes tell us to accept:

- `changeFromQuantity: Int` on `InventoryQuantityInput` and `InventoryChangeInput` (2026-01);
- the `@idempotent(key: String!)` directive on fields (2026-01);
- the user-error codes those brought (`CHANGE_FROM_QUANTITY_STALE`, `IDEMPOTENCY_*`), which
  the later enums list (shopify.dev, InventorySetQuantitiesUserErrorCode, 2026-01..2026-10).

Which of them a request may use depends on its version; `documents.py` enforces that.
Loading takes about two seconds, so it happens once per process, on first use.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import re
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    build_client_schema,
    extend_schema,
    parse,
)
from graphql.language import FloatValueNode, IntValueNode, StringValueNode, ValueNode

# Lets an operator point the sandbox at a newer introspection without a release.
SCHEMA_PATH_ENVIRONMENT = "SANDBOX_SHOPIFY_INTROSPECTION"
PACKAGED_SCHEMA = Path(__file__).with_name("data") / "admin-2025-01.introspection.json.gz"

LATER_VERSION_EXTENSIONS = """
extend input InventoryQuantityInput {
  "The quantity expected now; null skips the compare-and-swap check (2026-01, required from 2026-04)."
  changeFromQuantity: Int
}

extend input InventoryChangeInput {
  "The quantity expected now; null skips the compare-and-swap check (2026-01, required from 2026-04)."
  changeFromQuantity: Int
}

extend enum InventorySetQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE
  IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
}

extend enum InventoryAdjustQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE
  IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
}

"Makes a mutation safe to retry: a replay of the key returns the first result (2026-01)."
directive @idempotent(key: String!) on FIELD
"""

# Money is "a monetary value string without a currency symbol or code" (e.g. "100.57").
MONEY_TEXT = re.compile(r"-?\d+(\.\d+)?")

_lock = threading.Lock()
_schema: GraphQLSchema | None = None


def admin_schema() -> GraphQLSchema:
    """The extended Admin API schema, built on first call and shared by every store."""
    global _schema
    if _schema is None:
        with _lock:
            if _schema is None:
                _schema = _build()
    return _schema


def warm_up_in_background() -> None:
    """Start loading the schema now so a store's first request does not pay for it."""
    if _schema is None:
        threading.Thread(target=admin_schema, name="shopify-schema-load", daemon=True).start()


def _build() -> GraphQLSchema:
    introspection = _read_introspection()
    schema = extend_schema(build_client_schema(introspection["data"]), parse(LATER_VERSION_EXTENSIONS))
    _install_money_scalar(schema)
    # Resolve every lazy field map now, while one thread holds the lock, so concurrent
    # requests later only ever read the schema.
    for named_type in schema.type_map.values():
        for attribute in ("fields", "interfaces", "values"):
            getattr(named_type, attribute, None)
    # The schema is ~30 MB of long-lived objects; moving them out of the collector's view
    # keeps every later garbage collection (and so every request) fast.
    gc.collect()
    gc.freeze()
    return schema


def _read_introspection() -> dict[str, Any]:
    path = Path(os.environ.get(SCHEMA_PATH_ENVIRONMENT) or PACKAGED_SCHEMA)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    data: dict[str, Any] = json.loads(raw)
    return data


def parse_money(value: Any) -> str:
    """A Money input as its decimal text; numbers are taken too, as Shopify's clients send both."""
    if isinstance(value, bool):
        raise GraphQLError(f"Could not coerce value {json.dumps(value)} to Money")
    if isinstance(value, (int, float)):
        try:
            return str(Decimal(str(value)))
        except InvalidOperation:
            raise GraphQLError(f"Could not coerce value {value!r} to Money") from None
    if isinstance(value, str) and MONEY_TEXT.fullmatch(value.strip()):
        return value.strip()
    raise GraphQLError(f"Could not coerce value {json.dumps(value)} to Money")


def _parse_money_literal(node: ValueNode, _variables: Any = None) -> str:
    if isinstance(node, (StringValueNode, IntValueNode, FloatValueNode)):
        return parse_money(node.value)
    raise GraphQLError('Money must be a string such as "12.50"')


def _install_money_scalar(schema: GraphQLSchema) -> None:
    money = schema.get_type("Money")
    if isinstance(money, GraphQLScalarType):
        money.parse_value = parse_money  # type: ignore[method-assign]
        money.parse_literal = _parse_money_literal  # type: ignore[method-assign,assignment]
