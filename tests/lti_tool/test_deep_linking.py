"""Deep linking: the instructor's choice goes back to the platform as a signed LtiDeepLinkingResponse."""

from __future__ import annotations

import re

import jwt
import pytest
from django.test import RequestFactory

from lti_tool import keys, services
from lti_tool.claims import C_DEPLOYMENT_ID, C_DL_SETTINGS, C_MESSAGE_TYPE, C_VERSION, DEEP_LINKING_REQUEST
from lti_tool.models import Registration
from lti_tool.sessions import current_deep_link
from tests.lti_tool.conftest import INSTRUCTOR

ITEM = services.DeepLinkItem(
    title="ResNet challenges",
    custom={"placement": "8c1e"},
    score_maximum=100.0,
    label="ResNet challenges",
    resource_id="resnet-set",
    tag="resnet",
    text="Timed challenge set",
)


def deep_link(client, platform, **overrides):
    response = platform.full_launch(client, message_type=DEEP_LINKING_REQUEST, roles=[INSTRUCTOR], **overrides)
    assert response.status_code == 303
    return response["Location"].strip("/").split("/")[-1]


def respond(client, launch_id, items):
    request = RequestFactory().post("/deep-link/")
    request.session = client.session
    response = services.deep_linking_response(request, current_deep_link(request, launch_id), items)
    request.session.save()
    return response


def decode(platform, response):
    body = response.content.decode()
    action = re.search(r'<form id="lti-auto-submit" method="post" action="([^"]+)"', body).group(1)
    token = re.search(r'name="JWT" value="([^"]+)"', body).group(1)
    header = jwt.get_unverified_header(token)
    public = jwt.PyJWK(next(k for k in keys.public_jwks()["keys"] if k["kid"] == header["kid"])).key
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=platform.issuer)
    return action, header, claims


def test_response_is_signed_and_complete(client, platform):
    launch_id = deep_link(client, platform)
    launch = current_deep_link(_request(client), launch_id)
    assert launch.is_staff and launch.context_pk and launch.registration == platform.registration
    response = respond(client, launch_id, [ITEM])
    assert response.status_code == 200
    action, header, claims = decode(platform, response)
    assert action == platform.stub.url + "/deep-link-return"
    assert header["kid"] == keys.signing_key().kid and header["alg"] == "RS256"
    assert claims["iss"] == platform.client_id and claims["aud"] == [platform.issuer]
    assert claims[C_DEPLOYMENT_ID] == platform.deployment_id
    assert claims[C_MESSAGE_TYPE] == "LtiDeepLinkingResponse" and claims[C_VERSION] == "1.3.0"
    assert claims["nonce"] and claims["exp"] > claims["iat"]
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-123"
    [item] = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item == {
        "type": "ltiResourceLink",
        "title": "ResNet challenges",
        "url": "http://testserver/lti/launch/",
        "custom": {"placement": "8c1e"},
        "text": "Timed challenge set",
        "lineItem": {
            "scoreMaximum": 100.0,
            "label": "ResNet challenges",
            "resourceId": "resnet-set",
            "tag": "resnet",
            # The LMS may link its gradebook to the student's work here (Moodle 4.5 does).
            "submissionReview": {
                "reviewableStatus": ["InProgress", "Submitted", "Completed"],
                "label": "Open in ResNet Challenges",
            },
        },
    }
    assert 'src="/static/lti_tool/autosubmit.js"' in response.content.decode()


def _request(client):
    request = RequestFactory().get("/")
    request.session = client.session
    return request


def test_empty_custom_and_no_line_item_are_left_out(client, platform):
    """Moodle 4.5 fails on "custom": {}."""
    launch_id = deep_link(client, platform)
    item = services.DeepLinkItem(title="Practice", custom={}, score_maximum=None, label="", resource_id="", tag="")
    _, _, claims = decode(platform, respond(client, launch_id, [item]))
    [content] = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert "custom" not in content and "lineItem" not in content


def test_data_is_left_out_when_the_platform_sent_none(client, platform):
    settings = {
        "deep_link_return_url": platform.stub.url + "/deep-link-return",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"],
    }
    launch_id = deep_link(client, platform, **{C_DL_SETTINGS: settings})
    _, _, claims = decode(platform, respond(client, launch_id, [ITEM]))
    assert "https://purl.imsglobal.org/spec/lti-dl/claim/data" not in claims


def test_response_is_one_shot_and_needs_the_session(client, platform):
    launch_id = deep_link(client, platform)
    assert respond(client, launch_id, [ITEM]).status_code == 200
    assert current_deep_link(_request(client), launch_id) is None
    # The placement form refuses a deep-linking launch already answered, or one this session never had.
    again = client.post(f"/deep-link/{launch_id}/", {"title": "Again", "mode": "practice"})
    assert again.status_code == 403 and "JWT" not in again.content.decode()
    assert client.get("/deep-link/not-a-launch/").status_code == 403


@pytest.mark.parametrize(
    ("dl_overrides", "items"),
    [({"accept_multiple": False}, [ITEM, ITEM]), ({"accept_types": ["link"]}, [ITEM])],
)
def test_platform_limits_are_respected(client, platform, dl_overrides, items):
    settings = {
        "deep_link_return_url": platform.stub.url + "/deep-link-return",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"],
        **dl_overrides,
    }
    launch_id = deep_link(client, platform, **{C_DL_SETTINGS: settings})
    assert respond(client, launch_id, items).status_code == 400


def test_no_response_through_a_registration_disabled_meanwhile(client, platform):
    launch_id = deep_link(client, platform)
    Registration.objects.filter(pk=platform.registration.pk).update(status=Registration.Status.DISABLED)
    response = respond(client, launch_id, [ITEM])
    assert response.status_code == 403
    assert "JWT" not in response.content.decode()


def test_a_registration_deleted_meanwhile_is_an_expired_deep_link_not_an_error(client, platform):
    launch_id = deep_link(client, platform)
    Registration.objects.filter(pk=platform.registration.pk).delete()
    response = client.post(f"/deep-link/{launch_id}/", {"title": "Exam", "mode": "practice", "points": "5"})
    assert response.status_code == 403 and "has expired" in response.content.decode()
