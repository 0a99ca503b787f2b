"""Fixtures for the counter page's browser tests: skipped as a whole (with the reason) only
when Debian's Chromium is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_kit import chromium_missing_reason
from playwright.sync_api import Playwright, sync_playwright


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope: Playwright's sync API runs its own event loop; keeping it alive only
    # for the browser modules leaves the async tests elsewhere in the session untouched.
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with sync_playwright() as pw:
        yield pw
