"""Stock: absolute `available` quantities, written with compare-and-set under an idempotency key.

`inventorySetQuantities` sets each quantity only if the shop still holds the
`changeFromQuantity` we send: the quantity we read just before. A sale the shop makes between
our read and our write makes the write stale (`CHANGE_FROM_QUANTITY_STALE`) instead of being
overwritten; we then read again and retry, a bounded number of times within the push, and
leave the rest to the retry schedule.

The retry does not write the same target again: that would overwrite the sale. The quantity
we push was computed from the ledger before we read the shop, so whatever moved the shop
between our read and our write (a sale whose webhook has not reached the ledger yet) is not
in it: the retry writes the target moved by the same amount. When the sale reaches the ledger,
the next push finds the shop already showing it and writes nothing.

Idempotency: the key is a UUID derived from the channel, the location and each quantity's
(SKU, change version, quantity read, quantity to set), so a push resent after a crash, with
the same version and the same read, sends the same key and Shopify replays its first answer
instead of applying the change twice. (The quantity to set is part of the key because the
same key with other parameters is refused: IDEMPOTENCY_KEY_PARAMETER_MISMATCH.) When Shopify
says the key's earlier attempt failed, a generation counter makes a new one.

Up to 250 quantities go in one call (the input limit) for one mutation's 10 points; the reads
cost 3 points per item (`nodes(ids:)`), so a batch of 250 resolved SKUs costs about 760 points.
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..base import Outcome
from .client import ShopifyClient, error_code, error_outcome
from .cost import requested_cost
from .documents import inventory_set
from .errors import DELIVERED, LineOutcome
from .lookup import INPUT_LIMIT, levels_by_item

QUANTITY_NAME = "available"
REASON = "correction"
# Writes per push for one line: the first and up to three more after a stale read.
MAX_WRITES = 4
STALE_CODES = frozenset({"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"})  # 2026-04+, before
NEW_KEY_CODES = frozenset({"IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"})
_KEY_NAMESPACE = uuid.UUID("3b0f7d1e-52a4-4c43-9e4e-6a0f2c8d9b15")


@dataclass(frozen=True)
class StockLine:
    """One SKU's `available` to show at the location; `key` is the caller's handle."""

    key: int
    sku: str
    version: int
    inventory_item_id: str
    quantity: int


def quantity_entry(line: StockLine, location_id: str | None, change_from: int | None) -> dict:
    """One `InventoryQuantityInput`: the absolute quantity, compared with what was read."""
    return {
        "inventoryItemId": line.inventory_item_id,
        "locationId": location_id,
        "quantity": line.quantity,
        "changeFromQuantity": change_from,
    }


def idempotency_key(
    *, channel_id: int, location_id: str, entries: Sequence[tuple[str, int, int, int]], generation: int = 0
) -> str:
    """A key that depends only on what the call says: entries are (sku, version, read, to set)."""
    body = ";".join(f"{sku}:{version}:{read}:{quantity}" for sku, version, read, quantity in sorted(entries))
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{channel_id}|{location_id}|{generation}|{body}"))


@functools.cache
def write_cost() -> int:
    """What one `inventorySetQuantities` call requests, whatever it holds (a mutation's cost
    does not grow with its input): what a level read must leave in the bucket for its write."""
    return requested_cost(inventory_set(str(uuid.UUID(int=0))))


def reference_uri(channel_id: int, key: str) -> str:
    return f"syncsvc://channels/{channel_id}/inventory/{key}"


class CompareAndSet:
    """Writes stock lines for one push; records each line's fate in `done`."""

    def __init__(self, client: ShopifyClient, *, channel_id: int, location_id: str, max_cost: int,
                 done: dict[int, LineOutcome]):
        self.client = client
        self.channel_id = channel_id
        self.location_id = location_id
        self.max_cost = max_cost
        self.done = done
        self.generation = 0

    def run(self, lines: Sequence[StockLine], read: dict[int, int]) -> None:
        """`read[line.key]`: the quantity the shop showed when we last read it.

        Raises `ShopifyCallError` when a call fails as a whole; what was settled before stays
        in `done`.
        """
        read = dict(read)
        pending = list(lines)
        for attempt in range(MAX_WRITES):
            to_write = []
            for line in pending:
                if read[line.key] == line.quantity:
                    self.done[line.key] = DELIVERED  # the shop already shows it: nothing to write
                else:
                    to_write.append(line)
            again = [line for start in range(0, len(to_write), INPUT_LIMIT)
                     for line in self._write(to_write[start:start + INPUT_LIMIT], read)]
            if not again:
                return
            if attempt == MAX_WRITES - 1:
                for line in again:
                    self.done[line.key] = LineOutcome(
                        Outcome.RETRY, "CHANGE_FROM_QUANTITY_STALE", f"the shop's quantity kept changing ({MAX_WRITES} writes)"
                    )
                return
            pending = self._read_again(again, read)

    def _write(self, lines: list[StockLine], read: dict[int, int]) -> list[StockLine]:
        """One call; the lines to read again and write once more."""
        key = idempotency_key(
            channel_id=self.channel_id, location_id=self.location_id, generation=self.generation,
            entries=[(line.sku, line.version, read[line.key], line.quantity) for line in lines],
        )
        variables = {
            "input": {
                "name": QUANTITY_NAME,
                "reason": REASON,
                "referenceDocumentUri": reference_uri(self.channel_id, key),
                "quantities": [quantity_entry(line, self.location_id, read[line.key]) for line in lines],
            }
        }
        answer = self.client.execute(inventory_set(key), variables)
        payload = answer.data.get("inventorySetQuantities")
        if payload is None:
            error = next((e for e in answer.errors if e.get("path")), {"message": "no answer for the mutation"})
            code = error_code(error)
            for line in lines:
                self.done[line.key] = LineOutcome(error_outcome(code), code, str(error.get("message", "")))
            return []
        user_errors = payload.get("userErrors") or ()
        if not user_errors:
            for line in lines:
                self.done[line.key] = DELIVERED
            return []
        for user_error in user_errors:
            code = str(user_error.get("code") or "user_error")
            index = _quantity_index(user_error.get("field"))
            targets = [lines[index]] if index is not None and index < len(lines) else lines
            if code in STALE_CODES:
                continue  # read again and retry
            if code in NEW_KEY_CODES:
                self.generation += 1
                continue
            outcome = Outcome.RETRY if code == "IDEMPOTENCY_CONCURRENT_REQUEST" else Outcome.PERMANENT
            for line in targets:
                self.done[line.key] = LineOutcome(outcome, code, str(user_error.get("message", "")))
        # Whether the lines no error named were applied depends on the shop (all-or-nothing
        # or per quantity); reading them again tells, and those already set are then skipped.
        return [line for line in lines if line.key not in self.done]

    def _read_again(self, lines: list[StockLine], read: dict[int, int]) -> list[StockLine]:
        levels = levels_by_item(
            self.client, [line.inventory_item_id for line in lines], location_id=self.location_id,
            max_cost=self.max_cost, then=write_cost(),
        )
        pending = []
        for line in lines:
            level = levels.get(line.inventory_item_id)
            if level is None or not level.stocked or level.available is None:
                self.done[line.key] = LineOutcome(
                    Outcome.PERMANENT, "ITEM_NOT_STOCKED_AT_LOCATION", "the inventory item is gone or not stocked at the location"
                )
                continue
            moved = level.available - read[line.key]  # the shop's own change since our last read
            read[line.key] = level.available
            pending.append(replace(line, quantity=max(0, line.quantity + moved)))
        return pending


def _quantity_index(field_path) -> int | None:
    """The quantity a userError names (`["input", "quantities", "3", ...]` -> 3), else None."""
    if not field_path:
        return None
    parts = [str(part) for part in field_path]
    if "quantities" not in parts:
        return None
    position = parts.index("quantities") + 1
    try:
        return int(parts[position])
    except (IndexError, ValueError):
        return None
