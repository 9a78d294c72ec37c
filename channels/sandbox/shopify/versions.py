"""Shopify Admin API versions the emulator answers, and what each changed for inventory.

Quarterly versions from 2025-01 to 2026-10 are served; anything else answers 404 as Shopify
does for a version that does not exist. The inventory compare-and-set and idempotency rules
moved in two steps (shopify.dev changelog, December 2025):

- 2026-01 adds `changeFromQuantity` (on `InventoryQuantityInput` and `InventoryChangeInput`)
  and the `@idempotent(key:)` directive, both optional; `compareQuantity` and
  `ignoreCompareQuantity` still work and are used when `changeFromQuantity` is not sent.
- 2026-04 makes both mandatory (`changeFromQuantity` must be present on every quantity, null
  opting out of the check; `@idempotent` is enforced at run time) and removes
  `compareQuantity` / `ignoreCompareQuantity`.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_VERSIONS: tuple[str, ...] = (
    "2025-01",
    "2025-04",
    "2025-07",
    "2025-10",
    "2026-01",
    "2026-04",
    "2026-07",
    "2026-10",
)
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
CHANGE_FROM_QUANTITY_ADDED = "2026-01"
CHANGE_FROM_QUANTITY_REQUIRED = "2026-04"


@dataclass(frozen=True)
class ApiVersion:
    """One served API version; names compare as text because they are `YYYY-MM`."""

    name: str

    @classmethod
    def parse(cls, name: str) -> ApiVersion | None:
        """The version, or None when Shopify would not know it."""
        return cls(name) if name in SUPPORTED_VERSIONS else None

    @property
    def has_change_from_quantity(self) -> bool:
        return self.name >= CHANGE_FROM_QUANTITY_ADDED

    @property
    def requires_change_from_quantity(self) -> bool:
        return self.name >= CHANGE_FROM_QUANTITY_REQUIRED

    @property
    def has_compare_quantity(self) -> bool:
        return self.name < CHANGE_FROM_QUANTITY_REQUIRED

    @property
    def has_idempotent_directive(self) -> bool:
        return self.name >= CHANGE_FROM_QUANTITY_ADDED

    @property
    def requires_idempotent_directive(self) -> bool:
        return self.name >= CHANGE_FROM_QUANTITY_REQUIRED
