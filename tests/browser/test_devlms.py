"""The development LMS in a real browser: its home page, a launch into its course-page iframe, a launch in a new
window. The LMS and the tool talk only over HTTP with signed JWTs (both served by the live server)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    TOOL_FRAME,
    activity_item,
    assert_accessible,
    devlms_home,
    launch_in_frame,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser


def test_home_page_shows_a_students_courses_and_activities_and_is_accessible(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")

    devlms_home(page, "student1")

    expect(page.get_by_text(re.compile(r"Signed in as Ada Lovelace \(student1, student\)"))).to_be_visible()
    item = activity_item(page, "ResNet challenges")
    expect(item.get_by_role("link", name="Open in the course page")).to_be_visible()
    expect(item.get_by_role("link", name=re.compile("^Open in a new window"))).to_be_visible()
    # Only instructors add activities.
    expect(page.get_by_role("link", name="Add activity (deep linking)")).to_have_count(0)
    assert_accessible(page, "the development LMS home page (student)")


def test_switching_user_on_the_home_page_shows_the_instructor_tools(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    devlms_home(page, "student1")

    page.get_by_label("User").select_option("instructor1")
    page.get_by_role("button", name="Switch user").click()

    expect(page.get_by_text(re.compile(r"Signed in as .* \(instructor1, instructor\)"))).to_be_visible()
    expect(page.get_by_role("link", name="Add activity (deep linking)").first).to_be_visible()
    assert_accessible(page, "the development LMS home page (instructor)")


def test_student_launch_opens_the_tool_inside_the_course_page_iframe(page: Page, dev_lms, console_log) -> None:
    dev_lms.register_tool(style="canvas")

    tool = launch_in_frame(page, "student1")

    # The whole OIDC login -> authorization -> form post -> launch chain ran inside the iframe.
    expect(tool.get_by_role("heading", level=1, name="ResNet challenges")).to_be_visible()
    expect(tool.get_by_role("button", name="Start")).to_be_visible()
    frame = tool_frame(page)
    assert re.search(r"/p/\d+/$", frame.url), frame.url
    expect(page.locator(TOOL_FRAME)).to_have_attribute("title", "The tool")
    assert_accessible(page, "the development LMS course page")
    assert_accessible(frame, "the player's start page (in the LMS iframe)")
    # The tool's pages load everything they need from the tool itself, under its CSP.
    assert not [e for e in console_log if "favicon.ico" not in e], console_log


def _frame_fits(page: Page) -> bool:
    """The LMS iframe is as tall as the tool's page (no page inside a page) and the page does not scroll inside it."""
    frame = tool_frame(page)
    body = frame.evaluate("document.body.getBoundingClientRect().height")
    inner_scroll = frame.evaluate("document.documentElement.scrollHeight - window.innerHeight")
    outer = page.locator(TOOL_FRAME).evaluate("f => f.clientHeight")
    return abs(outer - body) <= 2 and inner_scroll <= 1


def test_the_lms_iframe_grows_and_shrinks_to_the_tools_page(page: Page, dev_lms) -> None:
    """The tool asks for its height with lti.frameResize (Canvas honours it; the development LMS does too)."""
    dev_lms.register_tool(style="canvas")
    page.set_viewport_size({"width": 390, "height": 700})  # a phone: the start page is taller than the frame

    tool = launch_in_frame(page, "student1")
    expect(tool.get_by_role("button", name="Start")).to_be_visible()
    start_height = page.locator(TOOL_FRAME).evaluate("f => f.clientHeight")
    page.wait_for_function(
        "() => document.querySelector('iframe.tool-frame').clientHeight > 0.75 * window.innerHeight + 10"
    )
    assert _frame_fits(page)

    start_set(tool)  # the first question's page is shorter: the frame follows it down
    page.wait_for_function(f"() => document.querySelector('iframe.tool-frame').clientHeight !== {start_height}")
    assert _frame_fits(page)
    assert page.locator(TOOL_FRAME).evaluate("f => f.clientHeight") < start_height


def test_student_launch_in_a_new_window_plays_there(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    devlms_home(page, "student1")

    with page.context.expect_page() as new_window:
        activity_item(page, "ResNet challenges").get_by_role("link", name=re.compile("^Open in a new window")).click()
    window = new_window.value
    window.wait_for_load_state()

    expect(window.get_by_role("heading", level=1, name="ResNet challenges")).to_be_visible()
    assert re.search(r"/p/\d+/$", window.url), window.url
    # The tool's session works top-level: the set starts and the first question opens.
    start_set(window)
    expect(window.get_by_role("button", name="Start question")).to_be_visible()


def test_where_the_browser_keeps_no_tool_cookies_in_the_course_frame_a_new_window_works(
    page: Page, dev_lms, live_server
) -> None:
    """The LMS on another site than the tool: the LMS at 127.0.0.1, the tool at localhost. Over plain http the
    tool's cookies are then third-party inside the course frame and the browser does not keep them, as a browser
    that blocks third-party cookies does. The tool must notice and offer the activity in a new window, where it
    works."""
    lms = live_server.url.replace("localhost", "127.0.0.1")
    assert lms != live_server.url
    page.goto(f"{lms}/devlms/register/?user=instructor1")
    page.get_by_label("The tool's registration URL").fill(f"{live_server.url}/lti/register/")
    page.get_by_role("radio", name="Canvas-like").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Registration finished"))
    page.get_by_role("link", name=re.compile("Back to the course list")).click()
    page.get_by_role("button", name=re.compile(r"^Install \(deploy\)")).click()

    page.goto(f"{lms}/devlms/?user=student1")
    activity_item(page, "ResNet challenges").get_by_role("link", name="Open in the course page").click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.get_by_role("heading", name="Your browser blocks this tool inside the course page")).to_be_visible()
    assert tool_frame(page).url.startswith(f"{live_server.url}/lti/login/")
    assert_accessible(tool_frame(page), "the tool's blocked-cookies page")

    with page.context.expect_page() as new_window:
        tool.get_by_role("link", name="Open in a new window").click()
    window = new_window.value
    expect(window.get_by_role("heading", level=1, name="ResNet challenges")).to_be_visible()
    assert window.url.startswith(f"{live_server.url}/p/"), window.url
    start_set(window)
    expect(window.get_by_role("button", name="Start question")).to_be_visible()
