"""In Chromium: the login page inside a platform's iframe stores state and nonce in the platform's postMessage
storage (lti_storage_target), and a launch whose state cookie was lost is accepted only after the page has read the
state back from that storage (LTI Client Side postMessages / postMessage Storage)."""

from __future__ import annotations

import html
import os
import re
from urllib.parse import urlencode

import pytest

from lti_tool.claims import C_TARGET_LINK_URI
from lti_tool.models import Deployment, Registration, ResourceLink
from tests.lti_tool.conftest import TestPlatform

pytestmark = pytest.mark.browser

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# The platform's storage: answers lti.put_data / lti.get_data for frames of the tool.
STORAGE_SCRIPT = """<script>
window.stored = {}; window.requests = [];
window.addEventListener("message", function (e) {
  var d = e.data || {};
  window.requests.push({subject: d.subject, key: d.key, origin: e.origin});
  if (d.subject === "lti.put_data") {
    window.stored[d.key] = d.value;
    e.source.postMessage({subject: "lti.put_data.response", message_id: d.message_id, key: d.key, value: d.value},
                         e.origin);
  } else if (d.subject === "lti.get_data") {
    e.source.postMessage({subject: "lti.get_data.response", message_id: d.message_id, key: d.key,
                          value: window.stored[d.key]}, e.origin);
  }
});
</script>"""
STORAGE_FRAME = "<!doctype html><title>storage</title>" + STORAGE_SCRIPT


@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM_PATH, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM_PATH} (make system-deps)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls from the test thread while Playwright's loop runs
    args = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=args)
    yield browser
    browser.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.mark.parametrize("forwarding_frame", [True, False], ids=["forwarding-frame", "no-frame-rce"])
def test_state_round_trips_through_platform_storage(
    chromium, live_server, transactional_db, stub, platform_keys, forwarding_frame
):
    # The platform and the tool are same-site (localhost, two ports) so the login's cookie check passes; the test
    # then drops the tool's cookies before the launch, as a browser blocking third-party cookies would.
    # Without the post_message_forwarding frame (Canvas's rich content editor), the course page itself answers the
    # messages the tool then sends to window.parent with the origin "*", as Canvas documents.
    lms_origin = stub.url.replace("127.0.0.1", "localhost")
    registration = Registration.objects.create(
        issuer=lms_origin,
        client_id="storage-client",
        auth_login_url=lms_origin + "/auth",
        auth_token_url=lms_origin + "/token",
        key_set_url=stub.url + "/jwks",
    )
    Deployment.objects.create(registration=registration, deployment_id="dep-s")
    lms = TestPlatform.from_registration(stub, platform_keys[0], registration, "dep-s")
    launch_url = live_server.url + "/lti/launch/"

    def auth_page(query: dict) -> str:
        # The platform's OIDC endpoint: an id_token for the tool, posted by a button (the test clicks it).
        token = lms.id_token(query["nonce"], **{C_TARGET_LINK_URI: launch_url})
        fields = {"id_token": token, "state": query["state"], "lti_storage_target": "post_message_forwarding"}
        inputs = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(val)}">' for k, val in fields.items()
        )
        return (
            f'<!doctype html><title>auth</title><form method="post" action="{html.escape(query["redirect_uri"])}">'
            f'{inputs}<button id="go">Launch</button></form>'
        )

    login_query = urlencode(
        {
            "iss": lms_origin,
            "client_id": "storage-client",
            "login_hint": "u1",
            "target_link_uri": launch_url,
            "lti_storage_target": "post_message_forwarding",
        }
    )
    stub.state.pages["/storage-frame"] = lambda q: STORAGE_FRAME
    stub.state.pages["/auth"] = auth_page
    storage_html = (
        '<iframe name="post_message_forwarding" src="/storage-frame"></iframe>' if forwarding_frame else STORAGE_SCRIPT
    )
    stub.state.pages["/course"] = lambda q: (
        f"<!doctype html><title>course</title>{storage_html}"
        f'<iframe id="tool" src="{html.escape(live_server.url + "/lti/login/?" + login_query)}"></iframe>'
    )

    context = chromium.new_context()
    page = context.new_page()
    page.goto(lms_origin + "/course")
    tool = page.frame_locator("#tool")
    tool.locator("#go").wait_for()  # login.js stored state and went on to the platform's auth endpoint

    storage = page.frame(name="post_message_forwarding") if forwarding_frame else page.main_frame
    stored = storage.evaluate("window.stored")
    state_keys = [k for k in stored if k.startswith("state_")]
    assert len(state_keys) == 1 and stored[state_keys[0]] == state_keys[0][len("state_"):]
    assert any(k.startswith("nonce_") for k in stored)

    context.clear_cookies()  # the state cookie is gone
    tool.locator("#go").click()
    # storage_launch.js reads the state back and posts the launch again; the tool accepts it.
    links = ResourceLink.objects.filter(context__deployment__registration=registration)
    for _ in range(150):
        if links.exists():
            break
        page.wait_for_timeout(100)
    assert links.count() == 1
    # ... and sent the browser on into the tool (the redirect to /launch/<pk>/ and whatever follows it).
    def tool_url() -> str:
        return next((f.url for f in page.frames if f.url.startswith(live_server.url)), "")

    for _ in range(100):
        if "/lti/" not in tool_url():
            break
        page.wait_for_timeout(100)
    assert tool_url() and "/lti/" not in tool_url()
    requests = storage.evaluate("window.requests")
    assert [r["subject"] for r in requests].count("lti.get_data") == 1
    assert all(r["origin"] == live_server.url for r in requests)
    context.close()


def test_blocked_cookies_offer_a_new_window(chromium, live_server, transactional_db, stub, platform_keys):
    """A cross-site frame over plain http cannot keep the tool's cookies: the login page says so and offers a new
    window, after still storing state in the platform storage."""
    lms_origin = stub.url  # 127.0.0.1: another site than the tool's localhost
    Registration.objects.create(
        issuer=lms_origin,
        client_id="blocked-client",
        auth_login_url=lms_origin + "/auth",
        auth_token_url=lms_origin + "/token",
        key_set_url=stub.url + "/jwks",
    )
    query = urlencode(
        {
            "iss": lms_origin,
            "client_id": "blocked-client",
            "login_hint": "u1",
            "target_link_uri": live_server.url + "/lti/launch/",
            "lti_storage_target": "post_message_forwarding",
        }
    )
    stub.state.pages["/storage-frame"] = lambda q: STORAGE_FRAME
    stub.state.pages["/course"] = lambda q: (
        '<!doctype html><title>course</title><iframe name="post_message_forwarding" src="/storage-frame"></iframe>'
        f'<iframe id="tool" src="{html.escape(live_server.url + "/lti/login/?" + query)}"></iframe>'
    )
    context = chromium.new_context()
    page = context.new_page()
    page.goto(lms_origin + "/course")
    tool = page.frame_locator("#tool")
    link = tool.get_by_role("link", name="Open in a new window")
    link.wait_for()
    href = link.get_attribute("href")
    assert "lti1p3_new_window=1" in href and re.search(r"client_id=blocked-client", href)
    stored = page.frame(name="post_message_forwarding").evaluate("window.stored")
    assert any(k.startswith("state_") for k in stored)
    context.close()
