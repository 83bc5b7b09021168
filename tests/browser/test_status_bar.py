"""The question's status bar (time left, attempts left, points so far) stays in view on a long question, inside the
LMS iframe on a desktop and in its own window on a phone; at zero it says "Time is up" visibly and locks the
question at once, without waiting for a reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from tests.browser.support import (
    activity_item,
    assert_accessible,
    begin_question,
    devlms_home,
    launch_in_frame,
    start_set,
    tool_frame,
)
from tests.browser.test_player import open_timer_drill

pytestmark = pytest.mark.browser
CODE_TITLE = "Fix the block: a projection shortcut"


def _open_code_challenge(tool: FrameLocator | Page) -> None:
    start_set(tool)
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=CODE_TITLE).click()
    begin_question(tool, CODE_TITLE)


def _bar_is_on_screen(page: Page, bar) -> None:
    """After scrolling the window to its bottom, the whole bar is inside the viewport (main-frame coordinates)."""
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    assert page.evaluate("() => window.scrollY") > 200, "the page is not long enough to test scrolling"
    viewport = page.viewport_size
    assert viewport

    def on_screen() -> bool:
        box = bar.bounding_box()
        return bool(box) and box["y"] >= -1 and box["y"] + box["height"] <= viewport["height"] + 1

    page.wait_for_function("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    deadline = 50
    while not on_screen() and deadline:  # the frame's bar follows on the next intersection callback
        page.wait_for_timeout(100)
        deadline -= 1
    assert on_screen(), f"status bar at {bar.bounding_box()} is outside the {viewport} viewport"


def test_the_status_bar_stays_in_view_in_the_lms_iframe(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    tool = launch_in_frame(page, "student1")
    _open_code_challenge(tool)
    bar = tool.get_by_role("region", name="Question status")
    expect(bar).to_contain_text(re.compile(r"\d+:\d\d remaining"))
    expect(bar).to_contain_text("Attempts:")
    expect(bar).to_contain_text("Points so far: 0.00 of")
    _bar_is_on_screen(page, bar)
    assert_accessible(tool_frame(page), "a code challenge scrolled to its bottom")


def test_the_status_bar_stays_in_view_on_a_phone(phone_page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    devlms_home(phone_page, "student5")
    with phone_page.context.expect_page() as new_window:
        activity_item(phone_page, "ResNet challenges").get_by_role(
            "link", name=re.compile("^Open in a new window")
        ).click()
    window = new_window.value
    _open_code_challenge(window)
    bar = window.get_by_role("region", name="Question status")
    expect(bar).to_contain_text("remaining")
    _bar_is_on_screen(window, bar)
    assert_accessible(window, "a code challenge on a phone, scrolled to its bottom")


def test_at_zero_time_is_up_shows_and_the_question_locks_without_a_reload(
    page: Page, dev_lms, tmp_path: Path
) -> None:
    tool = open_timer_drill(page, dev_lms, tmp_path)
    frame = tool_frame(page)
    bar = tool.get_by_role("region", name="Question status")
    expect(bar.get_by_text("Open", exact=True)).to_be_visible()
    expect(bar.get_by_text("Time is up", exact=True)).to_be_hidden()
    frame.evaluate("() => { window.notReloaded = true; }")

    expect(bar.get_by_text("Time is up", exact=True).first).to_be_visible(timeout=20_000)
    # At once, on this same page (the marker set above is still there: no reload happened).
    assert frame.evaluate("() => window.notReloaded === true")
    expect(bar.locator(".status")).to_have_text("Time is up")
    expect(bar.get_by_text("Open", exact=True)).to_have_count(0)
    for radio in tool.get_by_role("group", name="Choose one answer").get_by_role("radio").all():
        expect(radio).to_be_disabled()
    expect(tool.get_by_role("button", name="Submit answer")).to_be_disabled()
    expect(tool.get_by_role("button", name=re.compile("Show hint"))).to_be_disabled()
    assert frame.evaluate("() => window.notReloaded === true")
    assert_accessible(frame, "a question whose time is up")
