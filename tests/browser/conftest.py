"""Browser fixtures: Playwright (sync API) driving Debian's Chromium against the live server.

One headless Chromium is started for the whole browser package and reused; every test gets a fresh browser context
(its own cookies, like a fresh browser profile) and page. The development LMS and the tool are both served by
pytest-django's `live_server`, so everything between them is real HTTP with signed JWTs.

On failure a screenshot and the HTML of the page and of every frame are written under `test-artifacts/`
(gitignored), named after the test.

Chromium is launched by path (`CHROMIUM_PATH`, default /usr/bin/chromium; `make system-deps` installs Debian's
package). Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.support import ACTION_TIMEOUT_MS, EXPECT_TIMEOUT_MS, PHONE_VIEWPORT

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


# --- failure artifacts ------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Remember each phase's report on the item so fixtures can tell, at teardown, whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _artifact_stem(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


def save_artifacts(page: Page, stem: str) -> list[Path]:
    """Write a full-page screenshot and the HTML of the page and each frame under test-artifacts/."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    written: list[Path] = []
    shot = ARTIFACTS_DIR / f"{stem}.png"
    try:
        page.screenshot(path=str(shot), full_page=True, timeout=5_000)
        written.append(shot)
    except Exception:  # noqa: BLE001 - artifacts are best effort; never hide the real failure
        pass
    for index, frame in enumerate(page.frames):
        html_path = ARTIFACTS_DIR / f"{stem}.frame{index}.html"
        try:
            html_path.write_text(f"<!-- {frame.url} -->\n{frame.content()}", encoding="utf-8")
            written.append(html_path)
        except Exception:  # noqa: BLE001
            pass
    return written


# --- browser, context, page ---------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the whole browser package."""
    if not os.access(CHROMIUM_PATH, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM_PATH}: install Debian's package (`make system-deps`) or set "
            "CHROMIUM_PATH. Browser tests never download browsers."
        )
    # Playwright's sync API keeps an asyncio loop running in this thread; Django's ORM calls made by the test code
    # (not by the live server thread) would otherwise be refused as "async unsafe". Restored afterwards so the rest
    # of the suite keeps Django's guard.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    args = ["--disable-dev-shm-usage", "--disable-gpu"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's own sandbox refuses to run as root (CI containers)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True, scope="package")
def _expect_timeout() -> None:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each browser test starts with an empty cache, as its database starts empty.

    The transactional flush between tests recreates rows with the same primary keys but new content (the dev LMS
    makes a new signing key each time), so the tool's cached platform JWKS and launch state from the previous test
    would otherwise belong to a registration that no longer exists.
    """
    from django.core.cache import cache

    cache.clear()
    yield


def _new_context(browser: Browser, live_server: Any, **kwargs: Any) -> BrowserContext:
    context = browser.new_context(base_url=live_server.url, **kwargs)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


def _watch(page: Page, log: list[str]) -> None:
    """Collect console errors and uncaught page errors (CSP violations land here)."""
    def on_console(msg: Any) -> None:
        if msg.type == "error":
            log.append(f"console.error: {msg.text} ({msg.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.append(f"pageerror: {exc}"))


@pytest.fixture
def console_log() -> list[str]:
    """Console errors and uncaught exceptions of every page the test opened."""
    return []


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any, console_log: list[str]
) -> Iterator[Page]:
    """A fresh desktop page (own cookies) whose relative URLs resolve against the live server."""
    context = _new_context(browser, live_server, viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    _watch(new_page, console_log)
    context.on("page", lambda p: _watch(p, console_log))
    yield new_page
    _finish(request, context)


@pytest.fixture
def other_page(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any, console_log: list[str]
) -> Iterator[Page]:
    """A second person's browser (its own context and cookies), for tests where two people act."""
    context = _new_context(browser, live_server, viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    _watch(new_page, console_log)
    yield new_page
    _finish(request, context, suffix="other")


@pytest.fixture
def phone_page(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any, console_log: list[str]
) -> Iterator[Page]:
    """A fresh phone-sized page (375x667, touch, device scale 2)."""
    context = _new_context(browser, live_server, viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True,
                           device_scale_factor=2)
    new_page = context.new_page()
    _watch(new_page, console_log)
    yield new_page
    _finish(request, context)


def _finish(request: pytest.FixtureRequest, context: BrowserContext, suffix: str = "") -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        stem = _artifact_stem(request.node.nodeid) + (f".{suffix}" if suffix else "")
        for index, open_page in enumerate(context.pages):
            save_artifacts(open_page, stem if index == 0 else f"{stem}.page{index}")
    context.close()


@pytest.fixture
def celery_worker_process(live_server: Any, transactional_db: Any, tmp_path: Path) -> Iterator[Path]:
    """A real `celery worker` process (gpu and default queues, solo pool) on the test database and the test broker.

    Yields the path of its log. The live server's transactional database commits every write, so the worker, a
    separate process, sees the rows the browser created.
    """
    from tests.workers import CeleryWorker, purge_queues

    purge_queues("gpu", "default")
    process = CeleryWorker(tmp_path, name="browser-test", env={"GRADING_DEVICE": "cpu"})
    try:
        yield process.log
    finally:
        process.stop()
