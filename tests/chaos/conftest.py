"""One results table for every chaos module (the faults in test_chaos.py and the network faults
in test_network_chaos.py), written when the package's tests are done."""
from __future__ import annotations

import os

import pytest

from tests.chaos.scenario import RESULTS_DIR, write_table

FULL_RUN = os.environ.get("SYNCSVC_CHAOS") == "full"


@pytest.fixture(scope="package")
def outcomes():
    collected = []
    yield collected
    if collected:
        name = "chaos-results.md" if FULL_RUN else "chaos-results-short.md"
        command = "make chaos" if FULL_RUN else "make test (short form)"
        print("\n" + write_table(collected, path=RESULTS_DIR / name, command=command))
