"""A real headless browser for the admin's browser tests: Debian's Chromium driven by
Playwright (its own browser downloads are never used: no `playwright install`)."""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("SYNCSVC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _missing() -> str:
    """Why the browser tests cannot run here, or "" when they can."""
    if not os.path.exists(CHROMIUM):
        return f"browser test skipped: no Chromium at {CHROMIUM} (apt-get install chromium, or set SYNCSVC_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser test skipped: the playwright package is not installed (pip install -e '.[dev]')"
    return ""


def pytest_collection_modifyitems(config, items):
    # Skipped at collection, before any fixture starts the stack for nothing.
    reason = _missing()
    if reason:
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright import sync_api
    # Playwright's sync API keeps an asyncio loop in this thread, which makes Django refuse ORM
    # calls from the test ("async context"); they are plain sync calls here, so allow them while
    # the browser is open, and only then.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
