from __future__ import annotations

import pytest

from tests.support.sandbox import SandboxControl, start_sandbox


@pytest.fixture(scope="module")
def sandbox():
    """A real sandbox process per test module: (its control API, its base URL)."""
    process = start_sandbox()
    try:
        yield SandboxControl(process.url), process.url
    finally:
        process.stop()
