"""What a call to Shopify can end in, short of an answer we can use."""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Outcome


class ShopifyCallError(Exception):
    """A call that did not deliver: every item it carried (and, as the adapter stops there,
    every item not yet sent) gets this outcome. `fetch` lets it propagate to its caller."""

    def __init__(self, outcome: Outcome, code: str, message: str = "", retry_after: float | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.outcome = outcome
        self.code = code
        self.message = message[:500]
        self.retry_after = retry_after


class MaxCostExceeded(ShopifyCallError):
    """Shopify refused the document as too expensive for one query: send it in smaller parts."""

    def __init__(self, message: str = ""):
        super().__init__(Outcome.PERMANENT, "MAX_COST_EXCEEDED", message)


@dataclass(frozen=True)
class LineOutcome:
    """The fate of one line (one SKU) inside a bulk answer."""

    outcome: Outcome
    code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


DELIVERED = LineOutcome(Outcome.OK)
