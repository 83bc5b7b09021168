"""The live status JSON: the owner and staff see it, nobody else learns that it exists."""

from __future__ import annotations

import uuid
from dataclasses import asdict

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from grading.models import CodeSubmission
from lti_tool.sessions import SESSION_KEY, LaunchInfo
from tests.factories import LtiUserFactory, MembershipFactory, ResourceLinkFactory
from tests.grading.factories import CodeSubmissionFactory

pytestmark = pytest.mark.django_db


def url(submission) -> str:
    return reverse("grading:status", kwargs={"submission_id": submission.pk})


def launch_as(client, lti_user, resource_link, *, staff=False) -> None:
    info = LaunchInfo(
        launch_id=uuid.uuid4().hex, message_type="LtiResourceLinkRequest",
        registration_pk=lti_user.registration_id, deployment_pk=resource_link.context.deployment_id,
        lti_user_pk=lti_user.pk, context_pk=resource_link.context_id, resource_link_pk=resource_link.pk,
        is_staff=staff, is_learner=not staff,
    )
    session = client.session
    session[SESSION_KEY] = {str(resource_link.pk): asdict(info)}
    session.save()


@pytest.fixture
def course():
    link = ResourceLinkFactory()
    student = LtiUserFactory(registration=link.context.deployment.registration)
    MembershipFactory(context=link.context, lti_user=student)
    return link, student


def graded(student) -> CodeSubmission:
    return CodeSubmissionFactory(
        lti_user=student, status=CodeSubmission.Status.GRADED, score=1.5, max_score=2.0, feedback="3 of 4 passed.",
        checks=[{"name": "Output shape", "passed": True, "points": 1.0, "max_points": 1.0, "feedback": ""},
                {"name": "Stride", "passed": False, "points": 0.0, "max_points": 1.0, "feedback": "Downsample."}],
        artifacts={"loss_curves": {"series": {"plain": [1.0], "residual": [0.5]}}},
    )


def test_the_owner_sees_status_score_feedback_and_timestamps(client, course):
    link, student = course
    sub = graded(student)
    launch_as(client, student, link)

    response = client.get(url(sub))

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    assert data["status"] == "graded" and data["final"] is True
    assert (data["score"], data["max_score"]) == (1.5, 2.0)
    assert [c["name"] for c in data["checks"]] == ["Output shape", "Stride"]
    assert data["checks"][1]["feedback"] == "Downsample."
    assert data["artifacts"]["loss_curves"]["series"]["residual"] == [0.5]
    assert data["queued_at"] and "code" not in data


def test_a_queued_submission_shows_no_result_yet(client, course):
    link, student = course
    sub = CodeSubmissionFactory(lti_user=student)
    launch_as(client, student, link)

    data = client.get(url(sub)).json()

    assert data["status"] == "queued" and data["final"] is False
    assert data["score"] is None and data["checks"] == [] and data["started_at"] is None


def test_an_instructor_of_the_students_course_sees_it(client, course):
    link, student = course
    sub = graded(student)
    teacher = LtiUserFactory(registration=student.registration)
    launch_as(client, teacher, link, staff=True)

    assert client.get(url(sub)).status_code == 200


def test_an_instructor_of_another_course_does_not(client, course):
    _link, student = course
    sub = graded(student)
    other_link = ResourceLinkFactory()
    teacher = LtiUserFactory(registration=other_link.context.deployment.registration)
    launch_as(client, teacher, other_link, staff=True)

    assert client.get(url(sub)).status_code == 404


def test_another_student_anonymous_visitors_and_unknown_ids_get_404(client, course):
    link, student = course
    sub = graded(student)

    assert client.get(url(sub)).status_code == 404  # no launch at all
    classmate = LtiUserFactory(registration=student.registration)
    launch_as(client, classmate, link)
    assert client.get(url(sub)).status_code == 404
    missing = reverse("grading:status", kwargs={"submission_id": uuid.uuid4()})
    assert client.get(missing).status_code == 404


def test_django_staff_may_look(client, course):
    _link, student = course
    sub = graded(student)
    admin = get_user_model().objects.create_user("it", password="x" * 12, is_staff=True)
    client.force_login(admin)

    assert client.get(url(sub)).status_code == 200


def test_only_get_is_allowed(client, course):
    link, student = course
    sub = graded(student)
    launch_as(client, student, link)

    assert client.post(url(sub)).status_code in (403, 405)  # CSRF or method: never a change
