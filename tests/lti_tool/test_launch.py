"""Valid launches: rows keyed by (issuer, client_id[, deployment_id]), roles mapped, the launch remembered, and the
browser sent on to the quizzes pages (contract paths /launch/<pk>/, /deep-link/<id>/, /review/<pk>/<pk>/)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from lti_tool.claims import (
    C_CUSTOM,
    C_DEPLOYMENT_ID,
    C_FOR_USER,
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    SUBMISSION_REVIEW_REQUEST,
)
from lti_tool.models import Context, Deployment, LtiUser, Membership, ResourceLink
from lti_tool.sessions import DEEP_LINK_SESSION_KEY, current_launch
from tests.lti_tool.conftest import INSTRUCTOR, LAUNCH_URL, LEARNER, TestPlatform, launches_count

TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
INST_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
INST_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"


def session_launch(client, resource_link_pk):
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = client.session
    return current_launch(request, resource_link_pk)


def test_learner_launch_creates_rows_and_redirects(client, platform):
    before = launches_count(RESOURCE_LINK_REQUEST)
    response = platform.full_launch(client)
    assert response.status_code == 303
    link = ResourceLink.objects.get()
    assert re.fullmatch(rf"/launch/{link.pk}/", response["Location"])
    user = LtiUser.objects.get()
    assert (user.registration, user.sub) == (platform.registration, "user-1")
    assert (user.name, user.given_name, user.family_name, user.email) == (
        "Ada Lovelace", "Ada", "Lovelace", "ada@example.edu"
    )
    context = Context.objects.get()
    assert context.deployment == platform.deployment
    assert (context.context_id, context.title, context.label) == ("course-1", "Deep Learning", "DL101")
    assert context.lineitems_url == platform.stub.url + "/courses/1/lineitems"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in context.ags_scopes
    assert context.memberships_url == platform.stub.url + "/courses/1/memberships"
    assert link.context == context and link.resource_link_id == "link-1"
    assert link.custom == {"placement": "4f0c"}
    assert link.lineitem_url == platform.stub.url + "/courses/1/lineitems/7"
    membership = Membership.objects.get()
    assert (membership.is_learner, membership.is_staff, membership.from_roster) == (True, False, False)
    info = session_launch(client, link.pk)
    assert info.lti_user_pk == user.pk and info.is_learner and not info.is_staff
    assert info.resource_link_pk == link.pk and info.context_pk == context.pk
    assert info.custom == {"placement": "4f0c"}
    assert launches_count(RESOURCE_LINK_REQUEST) == before + 1


@pytest.mark.parametrize("roles", [[INSTRUCTOR], [TA], ["Instructor"], ["TeachingAssistant"], [INSTRUCTOR, INST_ADMIN]])
def test_staff_roles(client, platform, roles):
    assert platform.full_launch(client, roles=roles, sub="teacher").status_code == 303
    membership = Membership.objects.get()
    assert membership.is_staff
    assert session_launch(client, ResourceLink.objects.get().pk).is_instructor


@pytest.mark.parametrize("roles", [[LEARNER, INST_ADMIN], [LEARNER, INST_INSTRUCTOR], [INST_ADMIN, SYS_ADMIN]])
def test_institution_and_system_roles_grant_nothing_in_the_course(client, platform, roles):
    # Canvas adds institution-wide roles to every launch: a student who teaches elsewhere stays a student here.
    assert platform.full_launch(client, roles=roles, sub="someone").status_code == 303
    membership = Membership.objects.get()
    assert not membership.is_staff
    assert membership.is_learner == (LEARNER in roles)
    assert not session_launch(client, ResourceLink.objects.get().pk).is_instructor


def test_second_launch_updates_rows_without_duplicates(client, platform):
    assert platform.full_launch(client).status_code == 303
    assert platform.full_launch(client, name="Ada King", roles=[INSTRUCTOR], **{
        C_CUSTOM: {"placement": "new"}
    }).status_code == 303
    assert LtiUser.objects.get().name == "Ada King"
    assert ResourceLink.objects.get().custom == {"placement": "new"}
    assert Membership.objects.get().is_staff


def test_launch_without_names_keeps_stored_names(client, platform):
    from tests.lti_tool.conftest import REMOVE

    platform.full_launch(client)
    platform.full_launch(client, name=REMOVE, email=REMOVE, given_name=REMOVE, family_name=REMOVE)
    assert LtiUser.objects.get().email == "ada@example.edu"


def test_two_canvas_cloud_institutions_stay_separate(client, stub, platform_keys, db):
    """Canvas cloud: one issuer for every institution, told apart by client_id."""
    issuer = stub.url  # stands for https://canvas.instructure.com
    school_a = TestPlatform(stub, platform_keys[0], issuer=issuer, client_id="10000000000001", deployment_id="1:aa")
    school_b = TestPlatform(stub, platform_keys[0], issuer=issuer, client_id="10000000000002", deployment_id="1:aa")
    assert school_a.full_launch(client, sub="same-sub", context_id="c1").status_code == 303
    assert school_b.full_launch(client, sub="same-sub", context_id="c1").status_code == 303
    users = LtiUser.objects.order_by("registration__client_id")
    assert [u.registration.client_id for u in users] == ["10000000000001", "10000000000002"]
    assert Context.objects.count() == 2
    assert {c.deployment.registration_id for c in Context.objects.all()} == {
        school_a.registration.pk, school_b.registration.pk
    }
    assert ResourceLink.objects.count() == 2


def test_trusted_second_audience_with_azp(client, stub, platform_keys, db):
    """Several audiences are fine when azp names us and the others are this tool on the same platform."""
    a = TestPlatform(stub, platform_keys[0], issuer=stub.url, client_id="client-a", deployment_id="d")
    TestPlatform(stub, platform_keys[0], issuer=stub.url, client_id="client-b", deployment_id="d2")
    assert a.full_launch(client, aud=["client-a", "client-b"], azp="client-a").status_code == 303


@override_settings(LTI_DEPLOYMENT_POLICY="auto")
def test_new_deployment_of_a_known_registration_is_accepted(client, platform):
    """A registration IT trusts with every deployment (one Canvas sub-account): a new deployment id's first launch
    creates it, active (the default policy, approval, holds it for IT: tests/lti_tool/test_deployments.py)."""
    assert platform.full_launch(client, **{C_DEPLOYMENT_ID: "12:abcdef"}).status_code == 303
    deployment = Deployment.objects.get(deployment_id="12:abcdef")
    assert deployment.registration == platform.registration and deployment.is_active
    assert Context.objects.get().deployment == deployment


def test_deep_linking_launch(client, platform):
    response = platform.full_launch(client, message_type=DEEP_LINKING_REQUEST, roles=[INSTRUCTOR])
    assert response.status_code == 303
    launch_id = response["Location"].strip("/").split("/")[-1]
    assert response["Location"] == f"/deep-link/{launch_id}/"
    entry = client.session[DEEP_LINK_SESSION_KEY][launch_id]
    assert entry["is_staff"] and entry["return_url"] == platform.stub.url + "/deep-link-return"
    assert entry["data"] == "opaque-123"
    assert not ResourceLink.objects.exists()


def test_submission_review_launch(client, platform):
    from tests.lti_tool.conftest import REMOVE

    response = platform.full_launch(
        client,
        message_type=SUBMISSION_REVIEW_REQUEST,
        roles=[INSTRUCTOR],
        sub="teacher",
        **{C_FOR_USER: {"user_id": "student-9", "name": "Grace Hopper"}, C_CUSTOM: REMOVE},
    )
    assert response.status_code == 303
    link = ResourceLink.objects.get()
    student = LtiUser.objects.get(sub="student-9")
    assert student.name == "Grace Hopper"
    assert response["Location"] == f"/review/{link.pk}/{student.pk}/"
    info = session_launch(client, link.pk)
    assert info.is_staff and info.lti_user_pk == LtiUser.objects.get(sub="teacher").pk


def test_a_launch_lands_on_the_page_the_serving_app_registered(client, platform, monkeypatch):
    """lti_tool knows no other app's URLs: quizzes registers where each kind of launch goes (here: elsewhere)."""
    from django.urls import reverse

    from lti_tool import targets

    monkeypatch.setattr(targets, "_registered", targets.LaunchTargets(
        resource_link="quizzes:player", deep_link="quizzes:deep_link", submission_review="quizzes:student"
    ))
    response = platform.full_launch(client)

    link = ResourceLink.objects.get()
    assert response.status_code == 303
    assert response["Location"] == reverse("quizzes:player", kwargs={"resource_link_pk": link.pk})


def test_login_redirects_to_the_platform(client, platform):
    for method in ("get", "post"):
        response = getattr(client, method)(
            "/lti/login/",
            {
                "iss": platform.issuer,
                "login_hint": "hint-9",
                "target_link_uri": LAUNCH_URL,
                "lti_message_hint": "msg-9",
                "client_id": platform.client_id,
                "lti_deployment_id": "dep-1",
            },
        )
        assert response.status_code == 302
        url = urlsplit(response["Location"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == platform.stub.url + "/auth"
        q = {k: val[0] for k, val in parse_qs(url.query).items()}
        assert q["client_id"] == platform.client_id
        assert q["redirect_uri"] == LAUNCH_URL
        assert q["login_hint"] == "hint-9" and q["lti_message_hint"] == "msg-9"
        assert (q["response_type"], q["response_mode"], q["scope"], q["prompt"]) == (
            "id_token", "form_post", "openid", "none"
        )
        assert q["state"] and q["nonce"]
        assert client.cookies["lti1p3-" + q["state"]].value == q["state"]


def test_login_inside_an_iframe_checks_cookies_first(client, platform):
    response = client.get(
        "/lti/login/",
        {"iss": platform.issuer, "login_hint": "h", "target_link_uri": LAUNCH_URL, "client_id": platform.client_id},
        headers={"Sec-Fetch-Dest": "iframe"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'src="/static/lti_tool/login.js"' in body
    assert "data-auth-url=\"" + platform.stub.url + "/auth?" in body
    assert "lti1p3_new_window=1" in body  # the "open in a new window" fallback
    assert "<script>" not in body  # no inline script (CSP)
    # A new-window login runs top-level: a plain redirect.
    response = client.get(
        "/lti/login/",
        {"iss": platform.issuer, "login_hint": "h", "target_link_uri": LAUNCH_URL, "lti1p3_new_window": "1"},
        headers={"Sec-Fetch-Dest": "iframe"},
    )
    assert response.status_code == 302


def test_platform_key_rotation_refetches_the_jwks(client, platform, stub, platform_keys):
    assert platform.full_launch(client).status_code == 303
    assert platform.full_launch(client, resource_link_id="link-2").status_code == 303
    assert stub.state.jwks_fetches == 1  # cached between launches
    new_key = platform_keys[1]
    stub.state.keys = [new_key]  # the platform rotated; the old key is gone
    platform.key = new_key
    assert platform.full_launch(client, resource_link_id="link-3").status_code == 303
    assert stub.state.jwks_fetches == 2


def test_launch_rows_survive_a_refused_replay(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce)
    assert platform.launch(client, token, state).status_code == 303
    assert platform.launch(client, token, state).status_code == 400
    assert ResourceLink.objects.count() == 1
