"""LTI Dynamic Registration as an LMS administrator does it in a browser: paste the tool's /lti/register/ URL into
the development LMS, the tool's page runs in the LMS's iframe, registers over HTTP and closes itself with the
`org.imsglobal.lti.close` postMessage; then the admin installs (Canvas) or activates (Moodle) it and people launch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from lti_tool.devlms import services as platform_services
from lti_tool.devlms.models import Tool
from lti_tool.models import Registration
from tests.browser.support import assert_accessible, devlms_home, launch_in_frame

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("style_label", "install_button"), [("Canvas-like", "Install (deploy)"), ("Moodle-like", "Activate")]
)
def test_admin_registers_the_tool_in_the_browser_and_an_instructor_launches_it(
    page: Page, dev_lms, live_server, style_label: str, install_button: str
) -> None:
    devlms_home(page, "instructor1")
    page.get_by_role("link", name="Register a tool by Dynamic Registration").click()
    expect(page.get_by_role("heading", level=1, name=re.compile("Register a tool"))).to_be_visible()
    # The LMS offers the tool's one registration URL; the admin only picks how the platform behaves.
    expect(page.get_by_label("The tool's registration URL")).to_have_value(f"{live_server.url}/lti/register/")
    page.get_by_role("radio", name=style_label).check()
    page.get_by_role("button", name="Register").click()

    # The tool's page registers over HTTP, then asks the platform to close it (org.imsglobal.lti.close).
    expect(page.get_by_role("status")).to_have_text(re.compile("Registration finished"))
    expect(page.locator("#registration-frame")).to_be_hidden()
    tool = Tool.objects.get()
    registration = Registration.objects.get(issuer=dev_lms.issuer, client_id=tool.client_id)
    assert registration.registered_by == "dynamic"
    assert_accessible(page, "the development LMS registration page")

    # Back in the LMS: the new tool waits for the admin, who installs or activates it.
    page.get_by_role("link", name=re.compile("Back to the course list")).click()
    row = page.get_by_role("row").filter(has=page.get_by_text(tool.client_id, exact=True))
    expect(row.get_by_role("cell", name="pending")).to_be_visible()
    row.get_by_role("button", name=f"{install_button} {tool.client_id}").click()
    row = page.get_by_role("row").filter(has=page.get_by_text(tool.client_id, exact=True))
    expect(row.get_by_role("cell", name="installed")).to_be_visible()

    # An instructor launch now reaches the tool's instructor view inside the course page.
    tool_page = launch_in_frame(page, "instructor1")
    expect(tool_page.get_by_text("Instructor view")).to_be_visible()
    expect(tool_page.get_by_role("heading", name="Results")).to_be_visible()


def test_the_tools_registration_pages_are_accessible(page: Page, dev_lms) -> None:
    # Opened without the LMS's parameters, the URL explains where to paste it.
    page.goto("/lti/register/")
    expect(page.get_by_role("heading", level=1, name="The tool could not be registered")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Paste this URL into your LMS")
    assert_accessible(page, "the tool's registration error page")

    # The success page as the admin sees it (here top-level, where the close message has no frame to close).
    token = platform_services.start_registration("moodle")
    config_url = dev_lms.platform.url("openid_configuration")
    page.goto(f"/lti/register/?openid_configuration={config_url}&registration_token={token.token}")
    expect(page.get_by_role("heading", level=1, name=re.compile("is registered$"))).to_be_visible()
    expect(page.get_by_role("button", name="Close")).to_be_visible()
    assert_accessible(page, "the tool's registration success page")
