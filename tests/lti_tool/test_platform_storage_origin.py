"""Platform storage is addressed to the origin of the platform's storage frame: Canvas's new auth domain
(sso.canvaslms.com) also for a registration that still names the old one (canvas.instructure.com)."""

from __future__ import annotations

import re

import pytest

from lti_tool import launches
from lti_tool.models import Deployment, Registration


@pytest.mark.parametrize(
    ("auth_login_url", "origin"),
    [
        ("https://canvas.instructure.com/api/lti/authorize_redirect", "https://sso.canvaslms.com"),
        ("https://canvas.beta.instructure.com/api/lti/authorize_redirect", "https://sso.beta.canvaslms.com"),
        ("https://Canvas.Test.Instructure.com/api/lti/authorize_redirect", "https://sso.test.canvaslms.com"),
        ("https://sso.canvaslms.com/api/lti/authorize_redirect", "https://sso.canvaslms.com"),
        ("https://school.instructure.com/api/lti/authorize_redirect", "https://school.instructure.com"),
        ("https://moodle.example.edu/mod/lti/auth.php", "https://moodle.example.edu"),
        ("http://canvas.instructure.com/api/lti/authorize_redirect", "http://canvas.instructure.com"),
    ],
)
def test_storage_origin(auth_login_url, origin):
    assert launches.storage_origin(auth_login_url) == origin


@pytest.mark.django_db
def test_a_registration_naming_the_old_canvas_auth_domain_stores_state_with_the_new_one(client):
    registration = Registration.objects.create(
        issuer="https://canvas.instructure.com",
        client_id="10000000000042",
        auth_login_url="https://canvas.instructure.com/api/lti/authorize_redirect",
        auth_token_url="https://canvas.instructure.com/login/oauth2/token",
        key_set_url="https://canvas.instructure.com/api/lti/security/jwks",
    )
    Deployment.objects.create(registration=registration, deployment_id="1:abc")
    page = client.get(
        "/lti/login/",
        {
            "iss": "https://canvas.instructure.com",
            "client_id": "10000000000042",
            "login_hint": "u1",
            "lti_message_hint": "m1",
            "target_link_uri": "http://testserver/lti/launch/",
            "lti_storage_target": "post_message_forwarding",
        },
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-auth-origin="https://sso.canvaslms.com"' in text
    # The browser still goes to the authorize URL the registration names (Canvas answers on both domains).
    assert re.search(r'data-auth-url="https://canvas\.instructure\.com/api/lti/authorize_redirect\?', text)
