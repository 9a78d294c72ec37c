from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import WebhookReceiver
from tests.support.sandbox import SandboxControl, SandboxProcess, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    """A real sandbox process per test module."""
    process = start_sandbox()
    yield process
    assert process.stop() == 0, "the sandbox should exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def control(sandbox: SandboxProcess) -> SandboxControl:
    return SandboxControl(sandbox.url)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Where a store posts its webhooks in a test (the Amazon module keeps one for all)."""
    with WebhookReceiver() as endpoint:
        yield endpoint
