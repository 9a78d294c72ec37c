"""How the resync and catalog-refresh admins show a job's progress (the same dict shape)."""
from __future__ import annotations

from collections.abc import Callable


def progress_of(job, compute: Callable[[object], dict]) -> dict:
    """`compute(job)`, once per row: the list page shows progress and ETA from the same state
    (each costs the job's item counts)."""
    cached = getattr(job, "_admin_progress", None)
    if cached is None:
        cached = job._admin_progress = compute(job)
    return cached


def progress_text(state: dict) -> str:
    return f"{state['done']} / {state['total']} ({state['percent']}%)"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "not known yet"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
