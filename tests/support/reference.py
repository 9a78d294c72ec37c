"""The shared reference (channel API facts, samples, official specs) beside the checkout:
`<repo>/../shared/reference`, as in development and in CI's fresh clone."""
from __future__ import annotations

from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def reference_file(relative: str) -> Path:
    path = REFERENCE / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the shared reference must sit beside the checkout")
    return path
