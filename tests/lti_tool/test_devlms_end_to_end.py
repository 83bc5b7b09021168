"""The whole LTI core, end to end over HTTP: the development LMS registers the tool by Dynamic Registration (Canvas
style and Moodle style) and launches it as a learner and as an instructor, runs deep linking and submission review.

The platform only talks to the tool over HTTP with signed JWTs; these tests then look at what the tool stored.
"""

from __future__ import annotations

import pytest

from lti_tool.devlms import services
from lti_tool.devlms.models import ResourceLink as PlatformLink
from lti_tool.models import Deployment, LtiUser, Membership, Registration, ResourceLink
from tests.lti_support import parse_forms

pytestmark = pytest.mark.django_db(transaction=True)


def assert_launched(result, dev_lms):
    """The launch went through the tool's /lti/launch/ into the tool (a 303 to its launch page, then a page)."""
    hops = [r for r in result.response.history if r.url.endswith("/lti/launch/")]
    assert hops and hops[0].status_code == 303, result.response.text[:2000]
    assert result.response.status_code == 200, result.response.text[:2000]
    assert result.response.url.startswith(dev_lms.base_url)
    assert "/lti/" not in result.response.url


@pytest.mark.parametrize("style", ["canvas", "moodle"])
def test_registers_by_dynamic_registration(dev_lms, style):
    reg = dev_lms.register_tool(style=style)
    assert reg["response"].status_code == 200
    assert "org.imsglobal.lti.close" in reg["response"].text or "lti_tool/" in reg["response"].text
    registration = Registration.objects.get(issuer=dev_lms.issuer, client_id=reg["client_id"])
    assert registration.is_active
    assert registration.registered_by == "dynamic"
    assert registration.key_set_url == dev_lms.issuer + "/jwks/"
    assert registration.auth_login_url == dev_lms.issuer + "/auth/"
    assert registration.auth_token_url == dev_lms.issuer + "/token/"
    assert services.SCOPE_SCORE in reg["scopes"] and services.SCOPE_NRPS in reg["scopes"]
    assert {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"} <= {
        m["type"] for m in reg["registration"]["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    }
    if style == "moodle":
        # Moodle returned its deployment id at registration: the tool knows it before any launch.
        assert Deployment.objects.filter(registration=registration, deployment_id=reg["deployment_id"]).exists()


@pytest.mark.parametrize("style", ["canvas", "moodle"])
def test_launches_as_learner_and_instructor(dev_lms, style):
    reg = dev_lms.register_tool(style=style)

    learner = dev_lms.launch(user="student1")
    assert_launched(learner, dev_lms)
    registration = Registration.objects.get(issuer=dev_lms.issuer, client_id=reg["client_id"])
    student = LtiUser.objects.get(registration=registration, sub=dev_lms.sub("student1"))
    assert student.name == "Ada Lovelace" and student.email == "student1@devlms.example.edu"
    membership = Membership.objects.get(lti_user=student)
    assert membership.is_learner and not membership.is_staff
    context = membership.context
    assert context.deployment.deployment_id == reg["deployment_id"]
    assert context.title == "Deep Learning 101"
    assert context.lineitems_url.startswith(dev_lms.issuer + "/api/")
    assert "/CourseSection/" in context.memberships_url
    link = PlatformLink.objects.get(course__slug="course1", slug="link1")
    tool_link = ResourceLink.objects.get(context=context, resource_link_id=link.link_id)
    assert tool_link.lineitem_url == dev_lms.platform.lineitem_url(link.line_item, dev_lms.tool)
    if style == "moodle":
        assert "?type_id=" in tool_link.lineitem_url

    teacher = dev_lms.launch(user="instructor1")
    assert_launched(teacher, dev_lms)
    staff = Membership.objects.get(lti_user__sub=dev_lms.sub("instructor1"), context=context)
    assert staff.is_staff and not staff.is_learner


def test_each_browser_session_is_its_own_user(dev_lms):
    dev_lms.register_tool()
    first = dev_lms.launch(user="student1")
    second = dev_lms.launch(user="student2")
    assert_launched(first, dev_lms)
    assert_launched(second, dev_lms)
    assert first.session.cookies.get("sessionid") != second.session.cookies.get("sessionid")
    assert LtiUser.objects.filter(sub__in=[dev_lms.sub("student1"), dev_lms.sub("student2")]).count() == 2


def test_a_link_without_a_gradebook_column_launches(dev_lms):
    dev_lms.register_tool()
    result = dev_lms.launch(user="student2", resource_link="link2")
    assert_launched(result, dev_lms)
    link = PlatformLink.objects.get(course__slug="course1", slug="link2")
    assert ResourceLink.objects.get(resource_link_id=link.link_id).lineitem_url == ""


def test_a_replayed_id_token_is_refused(dev_lms):
    dev_lms.register_tool()
    session, state, nonce = dev_lms.start_login(user="student1")
    token = dev_lms.mint_id_token(nonce=nonce)
    first = dev_lms.post_launch(session, token, state)
    assert first.status_code == 200 and first.history and first.history[0].status_code == 303
    session2, state2, _ = dev_lms.start_login(user="student1")
    replay = dev_lms.post_launch(session2, token, state2)
    assert 400 <= replay.status_code < 500


def test_a_token_signed_by_another_key_is_refused(dev_lms):
    from lti_tool.devlms import jose

    dev_lms.register_tool()
    session, state, nonce = dev_lms.start_login(user="student1")
    forged = dev_lms.mint_id_token(nonce=nonce, key=jose.generate_rsa_pem())
    response = dev_lms.post_launch(session, forged, state)
    assert 400 <= response.status_code < 500
    assert not LtiUser.objects.filter(sub=dev_lms.sub("student1")).exists()


def test_the_platform_rotating_its_key_does_not_break_launches(dev_lms):
    dev_lms.register_tool()
    assert_launched(dev_lms.launch(user="student1"), dev_lms)
    dev_lms.rotate_key()
    assert_launched(dev_lms.launch(user="student1"), dev_lms)


def test_submission_review_opens_for_the_instructor(dev_lms):
    dev_lms.register_tool(style="moodle")
    assert_launched(dev_lms.launch(user="student3"), dev_lms)
    result = dev_lms.launch(user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student3")
    assert_launched(result, dev_lms)
    assert "/review/" in result.response.history[-1].headers.get("Location", "") or "/review/" in result.response.url
    # The Moodle-style for_user carries only user_id: the name stored at the student's own launch stays.
    assert "Grace Hopper" in result.response.text


def test_submission_review_of_a_student_who_never_launched(dev_lms):
    """Moodle 4.5 sends only `for_user.user_id`: the review still opens, on an empty history."""
    dev_lms.register_tool(style="moodle")
    result = dev_lms.launch(user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student5")
    assert_launched(result, dev_lms)
    assert "/review/" in result.response.url
    assert "No attempts yet." in result.response.text


def test_deep_linking_creates_an_activity_students_can_launch(dev_lms):
    dev_lms.register_tool()
    result = dev_lms.launch(user="instructor1", message_type="LtiDeepLinkingRequest")
    assert result.response.status_code == 200, result.response.text[:2000]
    assert "/deep-link/" in result.response.url
    # The instructor submits the tool's deep-linking form with its defaults (the whole set).
    forms = [f for f in parse_forms(result.response.text, result.response.url) if f.method == "post"]
    assert forms, result.response.text[:2000]
    form = forms[0]
    answer = result.session.post(form.action, data=form.fields, headers={"Referer": result.response.url}, timeout=30)
    assert answer.status_code == 200, answer.text[:2000]
    returned = dev_lms.deep_link_return(answer, session=result.session)
    assert returned.response.status_code == 200, returned.response.text[:2000]
    assert len(returned.links) == 1
    link = PlatformLink.objects.get(course__slug="course1", slug=returned.links[0])
    assert link.line_item is not None and link.line_item.score_maximum > 0
    assert "placement" in link.custom
    student = dev_lms.launch(user="student4", resource_link=link.slug)
    assert_launched(student, dev_lms)
    tool_link = ResourceLink.objects.get(resource_link_id=link.link_id)
    assert tool_link.custom == link.custom
    assert tool_link.lineitem_url == dev_lms.platform.lineitem_url(link.line_item, dev_lms.tool)


def test_the_demo_command_registers_and_installs_the_tool_once(dev_lms):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("devlms_register_tool", tool_url=dev_lms.base_url, style="moodle", stdout=out)
    assert "Registered by Dynamic Registration (moodle)" in out.getvalue()
    tool = services.current_tool()
    assert tool is not None and tool.style == "moodle"
    assert Registration.objects.filter(issuer=dev_lms.issuer, client_id=tool.client_id).exists()
    call_command("devlms_register_tool", tool_url=dev_lms.base_url, stdout=out)
    assert "Already registered" in out.getvalue()
    assert_launched(dev_lms.launch(user="student5"), dev_lms)
