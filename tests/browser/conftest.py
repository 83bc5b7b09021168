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
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Frame, Page, expect, sync_playwright

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"

# Pages render on a shared 2-core machine next to other test processes: generous, but bounded, waits.
ACTION_TIMEOUT_MS = 15_000
EXPECT_TIMEOUT_MS = 10_000

# The accessibility bar: WCAG 2.1 level A and AA rules; serious and critical violations fail the test.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

PHONE_VIEWPORT = {"width": 375, "height": 667}


# --- failure artifacts -------------------------------------------------------------------------------------------


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


# --- browser, context, page ----------------------------------------------------------------------------------------


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


def _new_context(browser: Browser, live_server: Any, **kwargs: Any) -> BrowserContext:
    context = browser.new_context(base_url=live_server.url, **kwargs)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


def _watch(page: Page, log: list[str]) -> None:
    """Collect console errors and uncaught page errors (CSP violations land here)."""
    page.on("console", lambda msg: log.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
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


def _finish(request: pytest.FixtureRequest, context: BrowserContext) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        stem = _artifact_stem(request.node.nodeid)
        for index, open_page in enumerate(context.pages):
            save_artifacts(open_page, stem if index == 0 else f"{stem}.page{index}")
    context.close()


# --- helpers the tests call ------------------------------------------------------------------------------------------


def assert_accessible(target: Page | Frame, where: str, *, exclude: list[str] | None = None) -> None:
    """Run axe-core (WCAG 2.1 A/AA rules) on a page or frame; fail on serious or critical violations.

    The failure message names each rule, its impact, the help URL and every offending element with axe's own
    explanation, so the report can be handed to whoever owns the template.
    """
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": WCAG_TAGS},
        "resultTypes": ["violations"],
        # Frames are checked separately (each needs axe injected); don't let the parent page report on them.
        "iframes": False,
    }
    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    results = Axe().run(target, context=context, options=options).response
    blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"{len(blocking)} serious/critical WCAG 2.1 A/AA violation(s) on {where} ({target.url}):"]
        for violation in blocking:
            lines.append(f"- {violation['id']} [{violation['impact']}]: {violation['help']} ({violation['helpUrl']})")
            for node in violation["nodes"][:10]:
                lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html'][:200]}")
                summary = (node.get("failureSummary") or "").replace("\n", " ")
                if summary:
                    lines.append(f"      {summary[:400]}")
        pytest.fail("\n".join(lines), pytrace=False)


def tool_frame(page: Page, *, selector: str = "iframe") -> Frame:
    """The content frame of the dev LMS iframe that holds the tool, once it has loaded something."""
    handle = page.locator(selector).first.element_handle(timeout=ACTION_TIMEOUT_MS)
    frame = handle.content_frame()
    assert frame is not None, "the iframe has no content frame"
    frame.wait_for_load_state()
    return frame


def has_horizontal_scroll(target: Page | Frame) -> bool:
    """True when the document is wider than its viewport (content that forces sideways scrolling on a phone)."""
    return bool(
        target.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"
        )
    )
