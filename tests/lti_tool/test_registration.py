"""Dynamic Registration at /lti/register/ against an outside platform (Canvas-style and Moodle-style), IT's policy,
and the Canvas developer-key JSON."""

from __future__ import annotations

import pytest

from lti_tool import dynreg
from lti_tool.models import Deployment, Registration
from tests.lti_tool.conftest import INSTRUCTOR, LEARNER, TestPlatform

pytestmark = pytest.mark.django_db

CANVAS_CONFIG_PATH = "/canvas/api/lti/security/openid-configuration"
CANVAS_REG_PATH = "/canvas/api/lti/registrations"
MOODLE_CONFIG_PATH = "/moodle/mod/lti/openid-configuration.php"
MOODLE_REG_PATH = "/moodle/mod/lti/openid-registration.php"


def canvas_style(stub, token="canvas-reg-token", client_id="10000000000042"):
    """Canvas: bearer token required on the configuration GET, no deployment id in the answer."""
    issuer = stub.url + "/canvas"
    stub.state.configs[CANVAS_CONFIG_PATH] = {
        "issuer": issuer,
        "authorization_endpoint": stub.url + "/auth",
        "registration_endpoint": stub.url + CANVAS_REG_PATH,
        "jwks_uri": stub.url + "/jwks",
        "token_endpoint": stub.url + "/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "scopes_supported": [*dynreg.TOOL_SCOPES, "https://canvas.instructure.com/lti/public_jwk/scope/update"],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "canvas",
            "version": "vCloud",
            "messages_supported": [
                {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
                {"type": "LtiDeepLinkingRequest", "placements": ["assignment_selection", "link_selection"]},
            ],
            "https://canvas.instructure.com/lti/account_name": "Test University",
        },
    }
    stub.state.config_bearer[CANVAS_CONFIG_PATH] = token
    stub.state.registration_answers[CANVAS_REG_PATH] = (
        200,
        {"client_id": client_id, "scope": " ".join(dynreg.TOOL_SCOPES), "client_name": "ResNet Challenges"},
    )
    return stub.url + CANVAS_CONFIG_PATH, token


def moodle_style(stub, deployment_id=7):
    """An older Moodle: trailing-space key, no authorization_endpoint, messages as strings; answers a deployment id."""
    issuer = stub.url + "/moodle"
    stub.state.configs[MOODLE_CONFIG_PATH] = {
        "issuer": issuer,
        "token_endpoint": issuer + "/mod/lti/token.php",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "jwks_uri": stub.url + "/jwks",
        "registration_endpoint": stub.url + MOODLE_REG_PATH,
        "scopes_supported": dynreg.TOOL_SCOPES,
        "response_types_supported": ["id_token"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration ": {
            "product_family_code": "moodle",
            "version": "4.5",
            "messages_supported": ["LtiResourceLink", "LtiDeepLinkingRequest"],
        },
    }
    stub.state.registration_answers[MOODLE_REG_PATH] = (
        200,
        {
            "client_id": "moodleClient123",
            "scope": " ".join(dynreg.AGS_SCOPES[:3]),
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": deployment_id},
        },
    )
    return stub.url + MOODLE_CONFIG_PATH, "moodle-token"


def register(client, config_url, token="", **extra):
    params = {"openid_configuration": config_url, **extra}
    if token:
        params["registration_token"] = token
    return client.get("/lti/register/", params)


def test_canvas_style_registration_then_launches(client, stub, platform_keys):
    config_url, token = canvas_style(stub)
    response = register(client, config_url, token)
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    assert 'src="/static/lti_tool/close.js"' in body  # posts org.imsglobal.lti.close
    assert [r["authorization"] for r in stub.state.config_requests] == [f"Bearer {token}"]

    reg = Registration.objects.get()
    assert (reg.issuer, reg.client_id, reg.status) == (stub.url + "/canvas", "10000000000042", "active")
    assert (reg.registered_by, reg.product_family, reg.name) == ("dynamic", "canvas", "Test University")
    assert reg.auth_login_url == stub.url + "/auth" and reg.key_set_url == stub.url + "/jwks"
    assert reg.scopes.split() == dynreg.TOOL_SCOPES
    assert not reg.deployments.exists()  # Canvas creates it when the admin installs the tool

    [posted] = stub.state.registrations_received
    assert posted["authorization"] == f"Bearer {token}"
    assert posted["content_type"] == "application/json"
    body = posted["body"]
    assert body["initiate_login_uri"] == "http://testserver/lti/login/"
    assert body["redirect_uris"] == ["http://testserver/lti/launch/"]
    assert body["jwks_uri"] == "http://testserver/lti/jwks/"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["application_type"] == "web" and body["response_types"] == ["id_token"]
    assert set(body["grant_types"]) == {"implicit", "client_credentials"}
    assert body["scope"].split() == dynreg.TOOL_SCOPES  # Canvas's extra scopes are not asked for
    tool = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool["domain"] == "testserver" and tool["target_link_uri"] == "http://testserver/lti/launch/"
    assert set(tool["claims"]) == {"sub", "iss", "name", "given_name", "family_name", "email"}
    assert {m["type"] for m in tool["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    assert all(m["target_link_uri"] == "http://testserver/lti/launch/" for m in tool["messages"])
    assert tool["https://canvas.instructure.com/lti/privacy_level"] == "public"

    # The admin installs the tool: the first launches bring the deployment id.
    lms = TestPlatform.from_registration(stub, platform_keys[0], reg, deployment_id="19:f00d")
    assert lms.full_launch(client, sub="student", roles=[LEARNER]).status_code == 303
    assert lms.full_launch(client, sub="teacher", roles=[INSTRUCTOR]).status_code == 303
    assert list(reg.deployments.values_list("deployment_id", flat=True)) == ["19:f00d"]


def test_canvas_configuration_needs_the_bearer_token(client, stub):
    config_url, _ = canvas_style(stub)
    response = register(client, config_url, token="wrong")
    assert response.status_code == 400
    assert "config_unavailable" in response.content.decode()
    assert not Registration.objects.exists() and not stub.state.registrations_received


def test_moodle_style_registration_with_quirks(client, stub, platform_keys):
    config_url, token = moodle_style(stub)
    response = register(client, config_url, token)
    assert response.status_code == 200, response.content[:500]
    reg = Registration.objects.get()
    assert reg.issuer == stub.url + "/moodle" and reg.client_id == "moodleClient123"
    assert reg.auth_login_url == stub.url + "/moodle/mod/lti/auth.php"  # defaulted: the config had none
    assert reg.auth_token_url == stub.url + "/moodle/mod/lti/token.php"
    assert reg.product_family == "moodle"  # read through the key with a trailing space
    assert list(reg.deployments.values_list("deployment_id", flat=True)) == ["7"]
    assert reg.scopes.split() == dynreg.AGS_SCOPES[:3]  # what Moodle granted
    lms = TestPlatform.from_registration(stub, platform_keys[0], reg, deployment_id="7")
    assert lms.full_launch(client, sub="2", roles=[LEARNER]).status_code == 303
    assert lms.full_launch(client, sub="3", roles=[INSTRUCTOR]).status_code == 303
    assert Deployment.objects.count() == 1


def test_approval_policy_keeps_registrations_pending(client, stub, platform_keys, settings):
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    settings.LTI_REGISTRATION_POLICY = "approval"
    config_url, token = moodle_style(stub)
    response = register(client, config_url, token)
    assert response.status_code == 200
    assert "waiting for approval" in response.content.decode()
    reg = Registration.objects.get()
    assert reg.status == "pending"
    lms = TestPlatform.from_registration(stub, platform_keys[0], reg, deployment_id="7")
    response = client.get(
        "/lti/login/",
        {"iss": reg.issuer, "login_hint": "h", "target_link_uri": "http://testserver/lti/launch/"},
    )
    assert response.status_code == 403 and "waiting for IT approval" in response.content.decode()

    # IT approves in the admin.
    admin = site._registry[Registration]
    request = RequestFactory().post("/admin/")
    request._messages = type("M", (), {"add": lambda *a, **k: None})()
    admin.approve(request, Registration.objects.filter(pk=reg.pk))
    reg.refresh_from_db()
    assert reg.status == "active"
    assert lms.full_launch(client).status_code == 303

    admin.disable(request, Registration.objects.filter(pk=reg.pk))
    response = client.get(
        "/lti/login/",
        {"iss": reg.issuer, "login_hint": "h", "target_link_uri": "http://testserver/lti/launch/"},
    )
    assert response.status_code == 403


def test_allowlist_policy(client, stub, settings):
    settings.LTI_REGISTRATION_POLICY = "allowlist"
    settings.LTI_REGISTRATION_ALLOWED_ISSUERS = ["https://canvas.instructure.com"]
    config_url, token = moodle_style(stub)
    response = register(client, config_url, token)
    assert response.status_code == 403
    assert "issuer_not_allowed" in response.content.decode()
    assert not Registration.objects.exists() and not stub.state.registrations_received

    settings.LTI_REGISTRATION_ALLOWED_ISSUERS = [stub.url + "/moodle/"]
    assert register(client, config_url, token).status_code == 200
    assert Registration.objects.get().status == "active"


def test_access_code(client, stub, settings):
    settings.LTI_REGISTRATION_ACCESS_CODE = "s3cret"
    config_url, token = moodle_style(stub)
    for code in ("", "wrong"):
        response = register(client, config_url, token, access_code=code)
        assert response.status_code == 403
        assert "access_code_invalid" in response.content.decode()
    assert not stub.state.config_requests
    assert register(client, config_url, token, access_code="s3cret").status_code == 200


def test_issuer_must_prefix_the_configuration_url(client, stub):
    config_url, token = moodle_style(stub)
    stub.state.configs[MOODLE_CONFIG_PATH]["issuer"] = "https://moodle.evil.example"
    response = register(client, config_url, token)
    assert response.status_code == 400 and "issuer_mismatch" in response.content.decode()
    assert not Registration.objects.exists()


def test_issuer_prefix_rule():
    assert dynreg.issuer_matches_url("https://lms.example", "https://lms.example/mod/lti/openid-configuration.php")
    assert not dynreg.issuer_matches_url("https://lms.example", "https://lms.example.evil.com/config")
    assert not dynreg.issuer_matches_url("https://lms.example/a", "https://lms.example/ab/config")
    # Canvas cloud: one issuer, the configuration comes from the school's own domain.
    assert dynreg.issuer_matches_url(
        "https://canvas.instructure.com", "https://school.instructure.com/api/lti/security/openid-configuration"
    )
    assert not dynreg.issuer_matches_url("https://canvas.instructure.com", "https://instructure.com.evil.example/x")


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("unreachable", "config_unavailable"),
        ("not_json_object", "config_invalid"),
        ("no_jwks", "config_invalid"),
        ("refused", "registration_refused"),
        ("no_client_id", "registration_invalid"),
        ("nul_in_configuration", "config_unavailable"),
        ("nul_in_answer", "registration_refused"),
    ],
)
def test_registration_failures_are_clean(client, stub, setup, reason):
    config_url, token = moodle_style(stub)
    if setup == "unreachable":
        config_url = stub.url + "/nothing-here"
    elif setup == "not_json_object":
        stub.state.configs[MOODLE_CONFIG_PATH] = ["a", "list"]
    elif setup == "no_jwks":
        del stub.state.configs[MOODLE_CONFIG_PATH]["jwks_uri"]
    elif setup == "refused":
        stub.state.registration_answers[MOODLE_REG_PATH] = (422, {"errors": ["nope"]})
    elif setup == "no_client_id":
        stub.state.registration_answers[MOODLE_REG_PATH] = (200, {"scope": ""})
    elif setup == "nul_in_configuration":  # no database text can hold a NUL
        stub.state.configs[MOODLE_CONFIG_PATH]["issuer"] += "\u0000"
    elif setup == "nul_in_answer":
        stub.state.registration_answers[MOODLE_REG_PATH] = (200, {"client_id": "moodle\u0000Client"})
    response = register(client, config_url, token)
    assert 400 <= response.status_code < 500
    assert reason in response.content.decode()
    if setup.startswith("nul"):
        assert "NUL character" in response.content.decode()
    assert not Registration.objects.exists()


def test_register_without_parameters_explains(client):
    response = client.get("/lti/register/")
    assert response.status_code == 400
    assert "Paste this URL" in response.content.decode()


def test_canvas_developer_key_json(client):
    config = client.get("/lti/canvas.json").json()
    assert config["title"] == "ResNet Challenges"
    assert config["oidc_initiation_url"] == "http://testserver/lti/login/"
    assert config["target_link_uri"] == "http://testserver/lti/launch/"
    assert config["public_jwk_url"] == "http://testserver/lti/jwks/"
    assert config["scopes"] == dynreg.TOOL_SCOPES
    [ext] = config["extensions"]
    assert ext["privacy_level"] == "public" and ext["platform"] == "canvas.instructure.com"
    placements = {p["placement"]: p["message_type"] for p in ext["settings"]["placements"]}
    assert placements == {
        "assignment_selection": "LtiDeepLinkingRequest",
        "link_selection": "LtiDeepLinkingRequest",
        "course_navigation": "LtiResourceLinkRequest",
    }


def test_urls_follow_tool_base_url(client, settings):
    settings.TOOL_BASE_URL = "https://tool.example.edu"
    config = client.get("/lti/canvas.json").json()
    assert config["oidc_initiation_url"] == "https://tool.example.edu/lti/login/"
