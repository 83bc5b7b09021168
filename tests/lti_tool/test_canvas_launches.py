"""Canvas behaviours the development LMS's Canvas flavour reproduces: institution roles on every launch and Course
Navigation launches that carry no line item (issue 19)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from lti_tool import dynreg
from lti_tool.devlms import services as lms
from lti_tool.devlms.models import Enrollment
from lti_tool.gradebook.models import ScoreUpdate
from lti_tool.models import Membership, ResourceLink
from quizzes import content
from quizzes.models import Attempt, Placement
from tests.lti_support import choice_options, parse_forms, post_form

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"


def test_a_student_who_teaches_another_course_gets_the_player_not_the_dashboard(dev_lms):
    dev_lms.register_tool(style="canvas")
    Enrollment.objects.filter(course__slug="course2", person__username="student1").update(is_instructor=True)
    roles = dev_lms.launch_claims(user="student1")[ROLES]
    assert lms.ROLE_TEACHER_INST in roles and lms.ROLE_LEARNER in roles  # Canvas's allRoles

    result = dev_lms.launch(user="student1")
    assert result.response.status_code == 200
    assert urlsplit(result.response.url).path.startswith("/p/")  # the player
    membership = Membership.objects.get(lti_user__sub=dev_lms.sub("student1"))
    assert membership.is_learner and not membership.is_staff
    rl = ResourceLink.objects.get().pk
    assert result.session.get(f"{dev_lms.base_url}/p/{rl}/instructor/", timeout=30).status_code == 403

    # The same person teaching course2 is staff there.
    teacher = dev_lms.launch(user="student1", course="course2")
    assert teacher.response.status_code == 200 and "Instructor view" in teacher.response.text


def test_an_observer_sees_the_activity_but_never_starts_a_graded_attempt(dev_lms):
    dev_lms.register_tool(style="canvas")
    # The browser first held a student's launch (so it has a CSRF token), then the observer launched in it.
    session = dev_lms.launch(user="student3").session
    observer = dev_lms.launch(
        user="student2",
        roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor", lms.ROLE_TEACHER_INST],
        session=session,
    )
    assert observer.response.status_code == 200 and "not as a student" in observer.response.text
    assert not parse_forms(observer.response.text, observer.response.url)
    started = session.post(
        observer.response.url + "start/", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=30
    )
    assert started.status_code == 403 and "not as a student" in started.text
    assert not Attempt.objects.exists()


def test_a_course_navigation_launch_runs_as_practice_and_says_so(dev_lms):
    dev_lms.register_tool(style="canvas")
    claims = dev_lms.launch_claims(user="student1", resource_link=lms.COURSE_NAV_LINK)
    assert "lineitem" not in claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]

    student = dev_lms.launch(user="student1", resource_link=lms.COURSE_NAV_LINK)
    page = student.response
    assert page.status_code == 200 and urlsplit(page.url).path.startswith("/p/")
    assert 'id="not-graded"' in page.text and "ask your instructor to add it as an assignment" in page.text
    link = ResourceLink.objects.get()
    assert not link.can_be_graded
    placement = Placement.objects.get()
    assert not placement.is_graded and placement.mode_slug == "practice"

    # Playing sends nothing anywhere: no score is queued for a column Canvas would never create.
    question = post_form(student.session, page, "/start/")  # untimed: the question shows at once
    first_option = next(iter(choice_options(question.text).values()))[1]
    assert post_form(student.session, question, "/answer/", choice=first_option).status_code == 200
    assert Attempt.objects.count() == 1 and not ScoreUpdate.objects.exists()

    # The instructor is told why, and cannot switch it to a graded mode.
    teacher = dev_lms.launch(user="instructor1", resource_link=lms.COURSE_NAV_LINK)
    assert 'id="not-graded"' in teacher.response.text and "course navigation menu" in teacher.response.text

    # A graded placement made for such a link before the tool knew (an older version) turns practice while nobody
    # has started it.
    Attempt.objects.all().delete()
    Placement.objects.update(mode_slug="timed", rules=content.get_mode("timed"))
    again = dev_lms.launch(user="student2", resource_link=lms.COURSE_NAV_LINK)
    assert 'id="not-graded"' in again.response.text and not Placement.objects.get().is_graded

    # An assignment link of the same course stays graded.
    dev_lms.launch(user="student1")
    assert ResourceLink.objects.exclude(pk=link.pk).get().can_be_graded


def test_an_instructor_cannot_make_an_ungradable_link_graded(dev_lms):
    dev_lms.register_tool(style="canvas")
    teacher = dev_lms.launch(user="instructor1", resource_link=lms.COURSE_NAV_LINK)
    answer = post_form(teacher.session, teacher.response, "/settings/", mode="timed")
    assert answer.status_code == 400 and "add the tool as an" in answer.text
    assert Placement.objects.get().mode_slug == "practice"


def test_canvas_refuses_a_line_item_for_a_course_navigation_link(dev_lms):
    """What the tool would meet if it tried: Canvas's 404 for a resourceLinkId that is not an assignment."""
    dev_lms.register_tool(style="canvas")
    course = lms.get_course("course1")
    with pytest.raises(lms.PlatformError) as refused:
        lms.create_line_item(
            dev_lms.platform,
            dev_lms.tool,
            course.pk,
            {},
            {"label": "x", "scoreMaximum": 1, "resourceLinkId": "devlms-course1"},
        )
    assert refused.value.status == 404


def test_dynamic_registration_keeps_course_navigation_off_by_default(dev_lms):
    reg = dev_lms.register_tool(style="canvas")
    messages = reg["registration"][dynreg.TOOL_CONFIG_KEY]["messages"]
    resource_link = next(m for m in messages if m["type"] == "LtiResourceLinkRequest")
    assert "course_navigation" in resource_link["placements"]
    assert resource_link[dynreg.CANVAS_COURSE_NAV_DEFAULT_ENABLED] is False


@pytest.mark.parametrize(("role", "allowed"), [("ContentDeveloper", True), ("Mentor", False), ("Learner", False)])
def test_designers_may_add_the_tool_through_deep_linking(dev_lms, role, allowed):
    dev_lms.register_tool(style="canvas")
    result = dev_lms.launch(
        user="student2",
        resource_link=None,
        message_type="LtiDeepLinkingRequest",
        roles=[f"http://purl.imsglobal.org/vocab/lis/v2/membership#{role}", lms.ROLE_TEACHER_INST],
    )
    assert result.response.status_code == (200 if allowed else 403)
    assert "/deep-link/" in result.response.url
    assert ("Add ResNet Challenges to your course" in result.response.text) == allowed
