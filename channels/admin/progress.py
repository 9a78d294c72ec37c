"""How the resync and catalog-refresh admins show a job's progress (the same dict shape)."""
from __future__ import annotations


def progress_text(state: dict) -> str:
    return f"{state['done']} / {state['total']} ({state['percent']}%)"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "not known yet"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
