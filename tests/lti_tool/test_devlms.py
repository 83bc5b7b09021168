"""The development LMS as an LTI 1.3 platform: configuration, Dynamic Registration, OIDC auth, token, deep linking.

The tool side here is `ToolPeer` (a JWKS over HTTP and a signer), so the platform is tested on its own; the real tool
is exercised in test_devlms_end_to_end.py.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from lti_tool.devlms import services
from lti_tool.devlms.models import ResourceLink, Tool
from tests.lti_support import parse_forms

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
pytestmark = pytest.mark.django_db(transaction=True)


def authorize(dev_lms, tool, **overrides):
    """Run the platform's side of a launch: login initiation params -> auth request -> (response, form)."""
    _, params = dev_lms.login_initiation(
        **{
            k: overrides.pop(k)
            for k in list(overrides)
            if k in {"user", "course", "resource_link", "message_type", "custom", "roles", "for_user"}
        }
    )
    auth = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": tool.client_id,
        "redirect_uri": tool.redirect_uris[0],
        "login_hint": params["login_hint"],
        "lti_message_hint": params["lti_message_hint"],
        "state": "state-123",
        "nonce": "nonce-456",
    }
    auth.update(overrides)
    auth = {k: v for k, v in auth.items() if v is not None}
    response = requests.post(dev_lms.platform.url("auth"), data=auth, timeout=30)
    forms = [f for f in parse_forms(response.text, response.url) if f.id == "devlms-autopost"]
    return response, (forms[0] if forms else None)


def platform_claims(dev_lms, token):
    jwks = requests.get(dev_lms.platform.url("jwks"), timeout=30).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=dev_lms.tool.client_id, issuer=dev_lms.issuer)


class TestConfiguration:
    def test_openid_configuration_describes_the_platform(self, dev_lms):
        config = requests.get(dev_lms.platform.url("openid_configuration"), timeout=30).json()
        assert config["issuer"] == dev_lms.issuer == dev_lms.base_url + "/devlms"
        assert config["registration_endpoint"] == dev_lms.issuer + "/registration/"
        assert config["token_endpoint"] == dev_lms.issuer + "/token/"
        assert config["authorization_endpoint"] == dev_lms.issuer + "/auth/"
        assert services.SCOPE_SCORE in config["scopes_supported"]
        assert services.SCOPE_NRPS in config["scopes_supported"]
        platform = config["https://purl.imsglobal.org/spec/lti-platform-configuration"]
        assert platform["product_family_code"] == "devlms"
        assert {m["type"] for m in platform["messages_supported"]} >= {
            "LtiResourceLinkRequest",
            "LtiDeepLinkingRequest",
        }

    def test_canvas_style_configuration_needs_the_registration_token(self, dev_lms):
        url = dev_lms.platform.url("openid_configuration", {"canvas": 1})
        assert requests.get(url, timeout=30).status_code == 401
        token = services.start_registration("canvas").token
        assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200

    def test_jwks_publishes_the_signing_key_only_public(self, dev_lms):
        keys = requests.get(dev_lms.platform.url("jwks"), timeout=30).json()["keys"]
        assert len(keys) == 1
        assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and "d" not in keys[0]


class TestDynamicRegistration:
    def test_moodle_style_returns_a_deployment_id_and_stays_pending(self, dev_lms, tool_peer):
        tool, answer = tool_peer.register(dev_lms, "moodle", install=False)
        config = answer["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        assert config["deployment_id"] == tool.deployment_id != ""
        assert answer["client_id"] == tool.client_id
        assert not tool.active
        assert services.current_tool() is None
        services.install_tool(tool)
        assert services.current_tool() == tool

    def test_canvas_style_has_no_deployment_until_installed(self, dev_lms, tool_peer):
        tool, answer = tool_peer.register(dev_lms, "canvas", install=False)
        assert "deployment_id" not in answer["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        assert tool.deployment_id == ""
        services.install_tool(tool)
        tool.refresh_from_db()
        assert tool.deployment_id and tool.active

    def test_stores_the_tool_urls_and_grants_supported_scopes(self, dev_lms, tool_peer):
        tool, answer = tool_peer.register(dev_lms, scopes=[services.SCOPE_SCORE, "https://example.com/unknown"])
        assert tool.initiate_login_uri == tool_peer.url + "/login"
        assert tool.redirect_uris == [tool_peer.url + "/launch"]
        assert tool.deep_link_uri == tool_peer.url + "/deep-link"
        assert tool.jwks_uri == tool_peer.url + "/jwks"
        assert answer["scope"] == services.SCOPE_SCORE

    def test_the_admin_may_cut_scopes(self, dev_lms, tool_peer):
        token = services.start_registration("canvas", granted_scopes=[services.SCOPE_SCORE])
        answer = requests.post(
            dev_lms.platform.url("registration"),
            json=tool_peer.registration_body(),
            headers={"Authorization": f"Bearer {token.token}"},
            timeout=30,
        ).json()
        assert answer["scope"] == services.SCOPE_SCORE

    def test_refuses_a_missing_or_unknown_token(self, dev_lms, tool_peer):
        for headers in [{}, {"Authorization": "Bearer nope"}]:
            response = requests.post(
                dev_lms.platform.url("registration"), json=tool_peer.registration_body(), headers=headers, timeout=30
            )
            assert response.status_code == 401, headers
        assert not Tool.objects.exists()

    def test_a_registration_token_is_single_use(self, dev_lms, tool_peer):
        token = services.start_registration("moodle").token
        url, body = dev_lms.platform.url("registration"), tool_peer.registration_body()
        first = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        second = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert first.status_code == 200
        assert second.status_code == 401 and "token_already_used" in second.text
        assert Tool.objects.count() == 1

    def test_refuses_a_malformed_registration(self, dev_lms, tool_peer):
        changes = [
            {"initiate_login_uri": "javascript:alert(1)"},
            {"redirect_uris": []},
            {"token_endpoint_auth_method": "client_secret_basic"},
            {"response_types": ["code"]},
            {"https://purl.imsglobal.org/spec/lti-tool-configuration": None},
        ]
        token = services.start_registration("canvas").token
        for change in changes:
            body = {**tool_peer.registration_body(), **change}
            response = requests.post(
                dev_lms.platform.url("registration"),
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert response.status_code == 400, change
        assert not Tool.objects.exists()

    def test_refuses_a_body_that_is_not_json(self, dev_lms):
        token = services.start_registration("canvas").token
        response = requests.post(
            dev_lms.platform.url("registration"),
            data=b"{nope",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 400


class TestLoginAndAuth:
    def test_login_initiation_sends_the_oidc_parameters(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        url, params = dev_lms.login_initiation("student1")
        assert url == tool.initiate_login_uri
        assert params["iss"] == dev_lms.issuer
        assert params["client_id"] == tool.client_id
        assert params["lti_deployment_id"] == tool.deployment_id
        assert params["login_hint"] == dev_lms.sub("student1")
        assert params["target_link_uri"] == tool.target_link_uri

    def test_the_start_page_redirects_the_browser_to_the_tool_login(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        response = requests.get(
            dev_lms.platform.url("launch_start", {"user": "student2", "course": "course1", "link": "link1"}),
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == tool.initiate_login_uri
        assert parse_qs(location.query)["login_hint"] == [dev_lms.sub("student2")]

    def test_a_learner_launch_carries_every_lti_claim(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        response, form = authorize(dev_lms, tool, user="student1", custom={"placement": "abc"})
        assert response.status_code == 200
        assert form.action == tool.redirect_uris[0]
        assert form.fields["state"] == "state-123"
        claims = platform_claims(dev_lms, form.fields["id_token"])
        assert claims["nonce"] == "nonce-456"
        assert claims["azp"] == tool.client_id
        assert claims["sub"] == dev_lms.sub("student1")
        assert claims["exp"] > claims["iat"] >= int(time.time()) - 60
        assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
        assert claims[LTI + "version"] == "1.3.0"
        assert claims[LTI + "deployment_id"] == tool.deployment_id
        assert claims[LTI + "target_link_uri"] == tool.target_link_uri
        assert "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner" in claims[LTI + "roles"]
        assert claims[LTI + "context"]["title"] == "Deep Learning 101"
        link = ResourceLink.objects.get(course__slug="course1", slug="link1")
        assert claims[LTI + "resource_link"]["id"] == link.link_id
        assert claims[LTI + "custom"] == {"placement": "abc"}
        assert claims[LTI + "launch_presentation"]["document_target"] == "iframe"
        assert claims["name"] == "Ada Lovelace" and claims["email"] == "student1@devlms.example.edu"
        ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
        assert services.SCOPE_SCORE in ags["scope"]
        assert ags["lineitems"].startswith(dev_lms.issuer + "/api/")
        assert ags["lineitem"].startswith(ags["lineitems"].split("?")[0] + "/")
        nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
        assert "/CourseSection/" in nrps["context_memberships_url"]

    def test_an_instructor_gets_instructor_roles(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        _, form = authorize(dev_lms, tool, user="instructor1")
        roles = platform_claims(dev_lms, form.fields["id_token"])[LTI + "roles"]
        assert "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor" in roles
        assert "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner" not in roles

    def test_a_link_without_a_column_has_no_lineitem_claim(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        _, form = authorize(dev_lms, tool, resource_link="link2")
        ags = platform_claims(dev_lms, form.fields["id_token"])[
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
        ]
        assert "lineitem" not in ags and "lineitems" in ags

    def test_moodle_style_service_urls_carry_type_id(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms, "moodle")
        _, form = authorize(dev_lms, tool)
        ags = platform_claims(dev_lms, form.fields["id_token"])[
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
        ]
        assert ags["lineitem"].endswith(f"/lineitem?type_id={tool.pk}")

    def test_a_deep_linking_request_carries_its_settings(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        _, form = authorize(dev_lms, tool, user="instructor1", message_type="LtiDeepLinkingRequest")
        claims = platform_claims(dev_lms, form.fields["id_token"])
        settings = claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
        assert claims[LTI + "message_type"] == "LtiDeepLinkingRequest"
        assert claims[LTI + "target_link_uri"] == tool.deep_link_uri
        assert settings["deep_link_return_url"] == dev_lms.issuer + "/deep-link-return/"
        assert settings["accept_types"] == ["ltiResourceLink"]
        assert set(settings["accept_presentation_document_targets"]) == {"iframe", "window"}
        assert "accept_multiple" in settings and settings["data"]
        assert LTI + "resource_link" not in claims

    def test_a_submission_review_names_the_student(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        _, form = authorize(
            dev_lms, tool, user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student3"
        )
        claims = platform_claims(dev_lms, form.fields["id_token"])
        assert claims[LTI + "message_type"] == "LtiSubmissionReviewRequest"
        assert claims[LTI + "for_user"]["user_id"] == dev_lms.sub("student3")
        assert "lineitem" in claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]

    def test_refuses_a_bad_auth_request(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        overrides = [
            {"client_id": "unknown"},
            {"redirect_uri": "http://evil.example/launch"},
            {"nonce": None},
            {"response_mode": "query"},
            {"response_type": "code"},
            {"scope": "profile"},
            {"prompt": "login"},
            {"login_hint": "someone-else"},
            {"lti_message_hint": "forged"},
            {"state": "s" * 3000},
        ]
        for override in overrides:
            response, form = authorize(dev_lms, tool, **override)
            assert response.status_code == 400, override
            assert form is None and 'name="id_token"' not in response.text, override

    def test_platform_storage_target_is_offered_and_echoed(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        request = services.LaunchRequest(
            user="student1", course="course1", resource_link="link1", storage_target="_parent"
        )
        _, params = services.login_initiation(dev_lms.platform, request, tool)
        assert params["lti_storage_target"] == "_parent"
        auth = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "client_id": tool.client_id,
            "redirect_uri": tool.redirect_uris[0],
            "login_hint": params["login_hint"],
            "lti_message_hint": params["lti_message_hint"],
            "state": "s",
            "nonce": "n",
        }
        response = requests.post(dev_lms.platform.url("auth"), data=auth, timeout=30)
        form = next(f for f in parse_forms(response.text) if f.id == "devlms-autopost")
        assert form.fields["lti_storage_target"] == "_parent"
        _, plain = dev_lms.login_initiation("student1")
        assert "lti_storage_target" not in plain

    def test_the_auto_post_uses_a_static_script_not_inline_code(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        response, _ = authorize(dev_lms, tool)
        assert '<script src="/static/devlms/autosubmit.js"></script>' in response.text
        assert "<script>" not in response.text


class TestTokenEndpoint:
    def test_grants_requested_scopes_the_tool_holds(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms, scopes=[services.SCOPE_SCORE, services.SCOPE_LINEITEM])
        response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE, services.SCOPE_NRPS])
        assert response.status_code == 200
        body = response.json()
        assert body["scope"] == services.SCOPE_SCORE
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]

    def test_accepts_the_issuer_as_audience(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        assertion = tool_peer.assertion(dev_lms, tool.client_id, aud=dev_lms.issuer)
        response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], assertion)
        assert response.status_code == 200

    def test_refuses_an_assertion_signed_with_another_key(self, dev_lms, tool_peer):
        from lti_tool.devlms import jose

        tool, _ = tool_peer.register(dev_lms)
        payload = jwt.decode(tool_peer.assertion(dev_lms, tool.client_id), options={"verify_signature": False})
        forged = tool_peer.sign(payload, key_pem=jose.generate_rsa_pem())
        response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], forged)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"

    def test_refetches_the_tool_jwks_on_an_unknown_kid(self, dev_lms, tool_peer):
        from lti_tool.devlms import jose

        tool, _ = tool_peer.register(dev_lms)
        assert tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE]).status_code == 200
        fetched = tool_peer.jwks_requests
        new_pem = jose.generate_rsa_pem()
        tool_peer.jwks["keys"].append(jose.public_jwk_from_pem(new_pem, "peer-key-2"))
        payload = jwt.decode(tool_peer.assertion(dev_lms, tool.client_id), options={"verify_signature": False})
        rotated = tool_peer.sign(payload, key_pem=new_pem, kid="peer-key-2")
        response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], rotated)
        assert response.status_code == 200
        assert tool_peer.jwks_requests == fetched + 1

    def test_refuses_a_replayed_assertion(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        assertion = tool_peer.assertion(dev_lms, tool.client_id)
        assert tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], assertion).status_code == 200
        again = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], assertion)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    def test_refuses_a_wrong_assertion(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        wrong = [{"aud": "http://elsewhere/token"}, {"exp": int(time.time()) - 600}, {"sub": "someone"}, {"iss": "x"}]
        for overrides in wrong:
            assertion = tool_peer.assertion(dev_lms, tool.client_id, **overrides)
            response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], assertion)
            assert response.status_code == 401, overrides
        garbage = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_SCORE], "not-a-jwt")
        assert garbage.status_code == 400

    def test_refuses_scopes_the_tool_does_not_hold(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms, scopes=[services.SCOPE_SCORE])
        response = tool_peer.request_token(dev_lms, tool.client_id, [services.SCOPE_NRPS])
        assert response.status_code == 400 and response.json()["error"] == "invalid_scope"

    def test_refuses_another_grant_type(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        response = requests.post(dev_lms.platform.token_url, data={"grant_type": "password"}, timeout=30)
        assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


class TestDeepLinkReturn:
    def dl_response(self, dev_lms, tool, tool_peer, items, data=None):
        _, form = authorize(dev_lms, tool, user="instructor1", message_type="LtiDeepLinkingRequest")
        settings = platform_claims(dev_lms, form.fields["id_token"])[
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
        ]
        now = int(time.time())
        payload = {
            "iss": tool.client_id,
            "aud": dev_lms.issuer,
            "iat": now,
            "exp": now + 300,
            "nonce": "dl-nonce",
            LTI + "message_type": "LtiDeepLinkingResponse",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": tool.deployment_id,
            "https://purl.imsglobal.org/spec/lti-dl/claim/data": settings["data"] if data is None else data,
            "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": items,
        }
        return payload

    def test_creates_the_link_and_its_gradebook_column(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        item = {
            "type": "ltiResourceLink",
            "title": "ResNet set",
            "custom": {"placement": "p-1"},
            "lineItem": {"scoreMaximum": 42, "label": "ResNet set", "resourceId": "r1", "tag": "resnet"},
        }
        token = tool_peer.sign(self.dl_response(dev_lms, tool, tool_peer, [item]))
        response = requests.post(dev_lms.platform.url("deep_link_return"), data={"JWT": token}, timeout=30)
        assert response.status_code == 200
        link = ResourceLink.objects.get(course__slug="course1", title="ResNet set")
        assert link.custom == {"placement": "p-1"}
        assert f'data-resource-link="{link.slug}"' in response.text
        assert link.line_item.score_maximum == 42 and link.line_item.tag == "resnet"
        assert link.line_item.resource_id == "r1"

    def test_refuses_a_response_signed_with_another_key(self, dev_lms, tool_peer):
        from lti_tool.devlms import jose

        tool, _ = tool_peer.register(dev_lms)
        payload = self.dl_response(dev_lms, tool, tool_peer, [{"type": "ltiResourceLink", "title": "x"}])
        token = tool_peer.sign(payload, key_pem=jose.generate_rsa_pem())
        response = requests.post(dev_lms.platform.url("deep_link_return"), data={"JWT": token}, timeout=30)
        assert response.status_code == 400
        assert not ResourceLink.objects.filter(title="x").exists()

    def test_refuses_data_the_platform_did_not_send(self, dev_lms, tool_peer):
        tool, _ = tool_peer.register(dev_lms)
        payload = self.dl_response(dev_lms, tool, tool_peer, [{"type": "ltiResourceLink", "title": "x"}], data="x")
        response = requests.post(
            dev_lms.platform.url("deep_link_return"), data={"JWT": tool_peer.sign(payload)}, timeout=30
        )
        assert response.status_code == 400

    def test_refuses_garbage(self, dev_lms):
        response = requests.post(dev_lms.platform.url("deep_link_return"), data={"JWT": "a.b.c"}, timeout=30)
        assert response.status_code == 400


class TestPages:
    def test_home_lets_a_person_pick_a_user_and_launch(self, dev_lms, tool_peer):
        tool_peer.register(dev_lms)
        page = requests.get(dev_lms.url, params={"user": "instructor1"}, timeout=30).text
        assert '<label for="user-select">' in page
        assert "<h1>Development LMS</h1>" in page
        assert "Deep Learning 101" in page and "Add activity" in page
        assert "Open in a new window" in page and "Gradebook" in page
        student_page = requests.get(dev_lms.url, params={"user": "student1"}, timeout=30).text
        assert "Add activity" not in student_page

    def test_home_warns_when_opened_at_another_address_than_the_tool_registered_with(self, dev_lms, tool_peer):
        tool_peer.register(dev_lms)
        assert "will refuse launches" not in requests.get(dev_lms.url, timeout=30).text
        other = dev_lms.url.replace("://localhost:", "://127.0.0.1:")
        assert other != dev_lms.url
        page = requests.get(other, timeout=30).text
        assert "will refuse launches from this address" in page
        assert f'href="{dev_lms.url}?user=instructor1"' in page

    def test_the_course_page_frames_the_launch(self, dev_lms, tool_peer):
        tool_peer.register(dev_lms)
        page = requests.get(
            dev_lms.platform.url("launch_frame", {"user": "student1", "course": "course1", "link": "link1"}),
            timeout=30,
        ).text
        assert '<iframe class="tool-frame" title="The tool"' in page
        assert "/devlms/launch/start/?" in page
        # A Canvas-style course page answers the LTI postMessage storage messages for its frame.
        assert "storage=1" in page and '<script src="/static/devlms/storage.js"></script>' in page
        dev_lms.set_style("course1", "moodle")
        moodle_page = requests.get(
            dev_lms.platform.url("launch_frame", {"user": "student1", "course": "course1", "link": "link1"}),
            timeout=30,
        ).text
        assert "storage=0" in moodle_page and "storage.js" not in moodle_page

    def test_register_page_opens_the_tool_with_configuration_and_token(self, dev_lms):
        session = requests.Session()
        page = session.get(dev_lms.platform.url("register"), timeout=30)
        csrf = parse_forms(page.text)[0].fields["csrfmiddlewaretoken"]
        response = session.post(
            dev_lms.platform.url("register"),
            data={"csrfmiddlewaretoken": csrf, "tool_url": "http://tool.example/lti/register/", "style": "moodle"},
            headers={"Referer": page.url},
            timeout=30,
        )
        assert response.status_code == 200
        assert 'id="registration-frame"' in response.text
        assert "openid_configuration=" in response.text and "registration_token=" in response.text
        assert '<script src="/static/devlms/register.js"></script>' in response.text

    def test_the_gradebook_page_lists_columns_and_students(self, dev_lms):
        page = requests.get(dev_lms.platform.url("gradebook", course_slug="course1"), timeout=30).text
        assert "Gradebook: Deep Learning 101" in page
        assert "Ada Lovelace" in page and "ResNet challenges" in page
        assert "Raw AGS history" in page

    def test_an_unknown_course_is_a_404(self, dev_lms):
        response = requests.get(dev_lms.platform.url("gradebook", course_slug="nope"), timeout=30)
        assert response.status_code == 404

    def test_fault_form_needs_csrf(self, dev_lms):
        response = requests.post(dev_lms.platform.url("faults"), data={"mode": "down"}, timeout=30)
        assert response.status_code == 403
        assert dev_lms.fault_hits() == 0
