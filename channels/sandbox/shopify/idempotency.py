"""`@idempotent(key:)` on the inventory mutations, as Shopify documents it.

A key remembers the mutation and arguments it was first used with, for 24 hours:
- the same mutation and arguments again: the first result comes back and nothing is applied
  a second time (the result objects are re-read, so related records show their current state,
  as Shopify builds a replay "from current database state");
- different arguments: the user error IDEMPOTENCY_KEY_PARAMETER_MISMATCH;
- a first attempt that ended in user errors applied nothing; replaying it answers
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED ("Retry with a new idempotency key"), the reading of that
  code we take since Shopify does not spell out which failures it covers.
Requests of one store run one at a time, so IDEMPOTENCY_CONCURRENT_REQUEST never arises.
Not locked itself: the store's lock guards it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

RETENTION_S = 24 * 3600
MAX_KEYS = 100_000

# Messages: the mismatch one as recorded from a live shop, the others from the enum reference.
MISMATCH_MESSAGE = "The request with this idempotency key has different parameters than the original request."
PREVIOUS_ATTEMPT_FAILED_MESSAGE = (
    "A previous request with this idempotency key failed. Retry with a new idempotency key."
)


@dataclass(frozen=True)
class Remembered:
    fingerprint: str
    payload: dict[str, Any]
    failed: bool
    at: float


def fingerprint(mutation: str, arguments: dict[str, Any]) -> str:
    """What makes two requests "the same": the mutation and its coerced arguments."""
    return json.dumps([mutation, arguments], sort_keys=True, default=str)


class IdempotencyKeys:
    """The keys one store has seen, oldest first."""

    def __init__(self) -> None:
        self._keys: OrderedDict[str, Remembered] = OrderedDict()

    def recall(self, key: str, now: float) -> Remembered | None:
        self._forget_expired(now)
        return self._keys.get(key)

    def remember(self, key: str, print_: str, payload: dict[str, Any], failed: bool, now: float) -> None:
        self._keys[key] = Remembered(print_, payload, failed, now)
        self._keys.move_to_end(key)
        while len(self._keys) > MAX_KEYS:
            self._keys.popitem(last=False)

    def _forget_expired(self, now: float) -> None:
        while self._keys:
            oldest_key, oldest = next(iter(self._keys.items()))
            if now - oldest.at < RETENTION_S:
                break
            del self._keys[oldest_key]
