"""A Canvas school on its own domain frames the tool in a real browser (issue 19): Chromium itself enforces the CSP
frame-ancestors that lti_tool.frames builds, so this is the blank-iframe bug as a school would see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Frame, Page, expect

pytestmark = pytest.mark.browser


@pytest.fixture
def school(live_server) -> Iterator[str]:
    """The school's own Canvas domain: a course page on another origin (127.0.0.1, where the tool is localhost) that
    frames the tool the way Canvas does. lti_tool.frames learns plain http only on loopback hosts, as it learns
    https://canvas.<university>.edu in production."""
    tool_url = live_server.url + "/"

    class CoursePage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = f'<!doctype html><title>Course</title><iframe title="The tool" src="{tool_url}"></iframe>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), CoursePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _tool_in_course_page(page: Page, school: str) -> Frame:
    """The tool's frame once the browser has either rendered it or refused it (an error page)."""
    page.goto(f"{school}/courses/1")
    for _ in range(300):  # bounded: 30 s
        frame = page.frames[1] if len(page.frames) > 1 else None
        if frame is not None and frame.url not in ("", "about:blank"):
            frame.wait_for_load_state("load")
            return frame
        page.wait_for_timeout(100)
    raise AssertionError("the course page's iframe never navigated")


def test_a_school_on_its_own_canvas_domain_sees_the_tool_in_its_iframe(page: Page, dev_lms, school) -> None:
    dev_lms.register_tool(style="canvas")
    assert "localhost" in dev_lms.base_url  # the tool's origin differs from the school's

    # Before any launch from that domain the browser refuses to render the tool inside it: the blank iframe.
    blocked = _tool_in_course_page(page, school)
    assert blocked.url.startswith("chrome-error://"), blocked.url

    # One verified launch whose signed return URL is on the school's domain teaches the tool that origin.
    dev_lms.launch(user="student1", domain=school)

    shown = _tool_in_course_page(page, school)
    assert shown.url == dev_lms.base_url + "/"
    expect(shown.get_by_role("heading", level=1)).to_be_visible()
