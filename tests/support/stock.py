"""Waiting for what the channels are shown."""
from __future__ import annotations

from tests.support.sandbox import SandboxControl, wait_until


def wait_stock_shown(sandbox: SandboxControl, sku: str, expected: dict[tuple[str, str], int], timeout: float = 20.0) -> None:
    """Until nothing is owed for the SKU's stock and every (kind, store) shows its expected
    quantity. A store seeded with that quantity shows it before our first push arrives (which
    may still carry an older figure): only both together say the pushes are done."""
    from channels.models import SyncMark

    def settled() -> bool:
        if SyncMark.objects.pending().filter(variant__sku=sku, aspect="inventory").exists():
            return False
        return all((sandbox.item(kind, store, sku) or {}).get("available") == units
                   for (kind, store), units in expected.items())

    wait_until(settled, timeout=timeout, message=f"{sku} never settled at {expected}")
