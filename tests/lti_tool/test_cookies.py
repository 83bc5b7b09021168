"""Cookies and framing inside LMS iframes: SameSite=None; Secure; Partitioned over HTTPS, CSP frame-ancestors for
the registered platforms, and platform (postMessage) storage of the login state when the platform offers it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from lti_tool import launches
from lti_tool.models import Registration, ResourceLink
from tests.factories import RegistrationFactory

SECURE_LAUNCH_URL = "https://testserver/lti/launch/"


def login_params(platform, target=SECURE_LAUNCH_URL, **extra):
    return {
        "iss": platform.issuer,
        "login_hint": "h",
        "target_link_uri": target,
        "client_id": platform.client_id,
        **extra,
    }


def test_cookies_are_cross_site_and_partitioned_over_https(client, platform):
    response = client.get("/lti/login/", login_params(platform), secure=True)
    assert response.status_code == 302
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    nonce = parse_qs(urlsplit(response["Location"]).query)["nonce"][0]
    assert set(response.cookies) >= {"lti1p3-" + state, "lti1p3-session-id"}
    for morsel in response.cookies.values():
        header = morsel.output()
        assert "SameSite=None" in header and "Secure" in header and "Partitioned" in header, header

    token = platform.id_token(nonce, **{"https://purl.imsglobal.org/spec/lti/claim/target_link_uri": SECURE_LAUNCH_URL})
    response = client.post("/lti/launch/", {"id_token": token, "state": state}, secure=True)
    assert response.status_code == 303
    session_cookie = response.cookies["sessionid"].output()
    assert "SameSite=None" in session_cookie and "Secure" in session_cookie and "Partitioned" in session_cookie


def test_plain_http_cookies_are_left_alone(client, platform):
    response = client.get("/lti/login/", login_params(platform, target="http://testserver/lti/launch/"))
    assert response.status_code == 302
    for morsel in response.cookies.values():
        header = morsel.output()
        assert "Partitioned" not in header and "Secure" not in header


def test_tool_pages_may_be_framed_by_registered_platforms_only(client, platform):
    RegistrationFactory(issuer="https://pending.example", auth_login_url="https://pending.example/auth",
                        status=Registration.Status.PENDING)
    response = client.get("/lti/jwks/")  # any tool page
    csp = response["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", csp).group(1).split()
    assert ancestors[0] == "'self'"
    assert platform.stub.url in ancestors
    assert "https://pending.example" not in ancestors
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp.split(
        "script-src")[1].split(";")[0]
    assert "X-Frame-Options" not in response


def test_new_registrations_update_frame_ancestors(client, platform):
    client.get("/lti/jwks/")
    RegistrationFactory(issuer="https://canvas.instructure.com", auth_login_url="https://sso.canvaslms.com/api/lti/a")
    csp = client.get("/lti/jwks/")["Content-Security-Policy"]
    # Canvas cloud frames the tool from each school's own domain.
    assert "https://*.instructure.com" in csp and "https://sso.canvaslms.com" in csp


def test_registration_page_may_be_framed_by_any_platform(client):
    assert "frame-ancestors *" in client.get("/lti/register/")["Content-Security-Policy"]


def test_admin_and_devlms_keep_their_own_rules(client, db):
    assert client.get("/admin/login/")["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert "Content-Security-Policy" not in client.get("/devlms/no-such-page/")


def test_platform_storage_login_and_launch(client, platform):
    """Canvas sends lti_storage_target: state goes into the platform's storage too, and a launch whose state
    cookie was dropped is checked against that storage by the browser before it is accepted."""
    response = client.get(
        "/lti/login/",
        login_params(platform, target="http://testserver/lti/launch/", lti_storage_target="post_message_forwarding"),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-storage-target="post_message_forwarding"' in body
    assert f'data-auth-origin="{platform.stub.url}"' in body
    state = re.search(r'data-state="([^"]+)"', body).group(1)
    nonce = re.search(r'data-nonce="([^"]+)"', body).group(1)
    token = platform.id_token(nonce)
    del client.cookies[launches.STATE_COOKIE_PREFIX + state]  # the browser dropped the third-party cookie

    check = client.post(
        "/lti/launch/", {"id_token": token, "state": state, "lti_storage_target": "post_message_forwarding"}
    )
    assert check.status_code == 200
    page = check.content.decode()
    assert 'src="/static/lti_tool/storage_launch.js"' in page
    assert 'name="lti_storage_verified" value="1"' in page
    assert not ResourceLink.objects.exists()

    done = client.post(
        "/lti/launch/",
        {
            "id_token": token,
            "state": state,
            "lti_storage_target": "post_message_forwarding",
            "lti_storage_verified": "1",
        },
    )
    assert done.status_code == 303
    assert ResourceLink.objects.count() == 1


def test_storage_claim_does_not_replace_the_cookie_without_storage_at_login(client, platform):
    state, nonce = platform.login(client)
    del client.cookies[launches.STATE_COOKIE_PREFIX + state]
    response = client.post(
        "/lti/launch/",
        {
            "id_token": platform.id_token(nonce),
            "state": state,
            "lti_storage_target": "_parent",
            "lti_storage_verified": "1",
        },
    )
    assert response.status_code == 400
    assert "state_cookie_missing" in response.content.decode()


def test_refusal_pages_may_be_framed_by_any_lms(client, platform):
    """An unregistered platform's admin must be able to read why the launch failed inside the LMS frame."""
    response = client.get("/lti/login/", {"iss": "https://unregistered.example", "login_hint": "h",
                                          "target_link_uri": "http://testserver/lti/launch/"})
    assert response.status_code == 401
    assert "frame-ancestors *" in response["Content-Security-Policy"]


def test_extra_frame_ancestors_setting(client, platform, settings):
    settings.LTI_FRAME_ANCESTORS_EXTRA = ["https://*.blackboard.com"]
    from lti_tool.frames import forget_frame_ancestors

    forget_frame_ancestors()
    assert "https://*.blackboard.com" in client.get("/lti/jwks/")["Content-Security-Policy"]
