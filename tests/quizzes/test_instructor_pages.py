"""The instructor's override, reopen and extend pages, the accommodation offer and the audit trail over HTTP: staff of
the launched course only, forms bounded, a clear 4xx for bad input that changes nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from quizzes import actions, services
from quizzes.models import Attempt, AuditEntry, QuestionState
from tests.quizzes.factories import PlacementFactory, establish_launch, instructor_for, student_for

pytestmark = pytest.mark.django_db

FIRST = "why-skip-connections"  # answer A, 1 point, 2 attempts, 120 s
SECOND = "skip-block-output-shape"  # answer D
Status = QuestionState.Status


def _setup(mode: str = "timed", slugs=(FIRST, SECOND)):
    placement = PlacementFactory(mode=mode, slugs=list(slugs))
    rl = placement.resource_link
    student = student_for(rl, name="Ada Student")
    teacher = instructor_for(rl, name="Grace Teacher")
    staff_client, student_client = Client(), Client()
    establish_launch(staff_client, rl, teacher, staff=True)
    establish_launch(student_client, rl, student)
    attempt = services.start_attempt(placement, student)
    return placement, rl, student, teacher, staff_client, student_client, attempt


def _url(name: str, rl, **kwargs) -> str:
    return reverse(f"quizzes:{name}", kwargs={"resource_link_pk": rl.pk, **kwargs})


def _question_url(name: str, rl, student, attempt, slug: str = FIRST) -> str:
    return _url(name, rl, lti_user_pk=student.pk, attempt_pk=attempt.pk, question=slug)


def _state(attempt: Attempt, slug: str = FIRST) -> QuestionState:
    return attempt.states.get(slug=slug)


# --- Override ---------------------------------------------------------------------------------------------------


def test_the_override_page_sets_points_with_a_comment_the_student_then_sees():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    services.show_question(attempt, FIRST)
    services.submit_answer(attempt, FIRST, "B")
    page = staff.get(_question_url("override", rl, student, attempt))
    assert page.status_code == 200 and b"Override points" in page.content and b'name="comment"' in page.content

    response = staff.post(
        _question_url("override", rl, student, attempt),
        {"points": "0.75", "comment": "Your second line of reasoning was right."},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#attempt-{attempt.pk}")
    state = _state(attempt)
    assert state.points == 0.75 and state.override_comment == "Your second line of reasoning was right."
    entry = AuditEntry.objects.get()
    assert entry.actor == teacher and entry.student == student and entry.action == "override_points"

    services.finish_attempt(attempt)
    summary = learner.get(_url("summary", rl)).content.decode()
    assert "Your second line of reasoning was right." in summary and "set by your instructor" in summary
    review = learner.get(_url("question", rl, slug=FIRST)).content.decode()
    assert "Your instructor set the points to 0.75 of 1." in review
    student_page = staff.get(_url("student", rl, lti_user_pk=student.pk)).content.decode()
    assert "Points set by an instructor" in student_page


@pytest.mark.parametrize(
    "data,message",
    [
        ({"points": "2", "comment": "too many"}, "between 0 and 1"),
        ({"points": "-1", "comment": "negative"}, "greater than or equal to 0"),
        ({"points": "NaN", "comment": "x"}, "Enter a number"),
        ({"points": "1"}, "This field is required"),
        ({"points": "1", "comment": "x" * 1001}, "at most 1000 characters"),
        ({"points": "1", "comment": "nul\x00"}, "Null characters are not allowed"),
        ({"comment": "no points"}, "This field is required"),
    ],
)
def test_a_bad_override_is_refused_with_a_400_and_changes_nothing(data, message):
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    response = staff.post(_question_url("override", rl, student, attempt), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert _state(attempt).override_points is None and not AuditEntry.objects.exists()


def test_removing_an_override_from_its_page_restores_the_earned_points():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    actions.do_override_points(attempt, FIRST, actions.Override(1.0, "Generous"), actor=teacher)
    page = staff.get(_question_url("override", rl, student, attempt)).content.decode()
    assert "Remove the override" in page and "Generous" in page
    response = staff.post(_question_url("override", rl, student, attempt), {"remove": "1", "note": "Mistake"})
    assert response.status_code == 302
    assert _state(attempt).override_points is None and _state(attempt).points == 0
    assert AuditEntry.objects.filter(action="remove_override", note="Mistake").exists()


# --- Reopen and extend ------------------------------------------------------------------------------------------


def test_the_reopen_page_reopens_a_timed_out_question_that_the_student_then_answers():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    services.show_question(attempt, FIRST)
    QuestionState.objects.filter(attempt=attempt, slug=FIRST).update(deadline=timezone.now() - timedelta(minutes=5))
    services.refresh_attempt(attempt)
    assert _state(attempt).status == Status.EXPIRED

    page = staff.get(_question_url("reopen_question", rl, student, attempt))
    assert page.status_code == 200 and b"Reopen the question" in page.content
    before = timezone.now()
    response = staff.post(
        _question_url("reopen_question", rl, student, attempt),
        {"minutes": "3", "extra_attempts": "0", "note": "Wi-Fi dropped"},
    )
    assert response.status_code == 302
    state = _state(attempt)
    assert state.status == Status.OPEN
    assert before + timedelta(minutes=3) <= state.deadline <= timezone.now() + timedelta(minutes=3)
    assert services.submit_answer(attempt, FIRST, "A").correct
    assert AuditEntry.objects.get().note == "Wi-Fi dropped"


@pytest.mark.parametrize(
    "data", [{"minutes": "0"}, {"minutes": "1441"}, {"minutes": "abc"}, {"extra_attempts": "101"},
             {"extra_attempts": "-1"}, {"note": "n" * 501}]
)
def test_a_bad_reopen_is_refused_with_a_400(data):
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    response = staff.post(_question_url("reopen_question", rl, student, attempt), data)
    assert response.status_code == 400 and not AuditEntry.objects.exists()


def test_reopening_a_correct_question_is_refused_with_a_409_on_the_page():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    services.show_question(attempt, FIRST)
    services.submit_answer(attempt, FIRST, "A")
    response = staff.post(_question_url("reopen_question", rl, student, attempt), {"minutes": "5"})
    assert response.status_code == 409 and b"answered correctly" in response.content
    assert not AuditEntry.objects.exists()


def test_an_exam_attempt_is_extended_and_a_finished_one_reopened_from_the_student_page():
    placement, rl, student, teacher, staff, learner, attempt = _setup("exam")
    page = staff.get(_url("student", rl, lti_user_pk=student.pk)).content.decode()
    assert "Extend this attempt" in page and "Reopen this attempt" not in page
    closes = attempt.closes_at
    extend = _url("extend_attempt", rl, lti_user_pk=student.pk, attempt_pk=attempt.pk)
    assert staff.post(extend, {"minutes": ""}).status_code == 400
    assert staff.post(extend, {"minutes": "2000"}).status_code == 400
    assert staff.post(extend, {"minutes": "10"}).status_code == 302
    attempt.refresh_from_db()
    assert (attempt.closes_at - closes).total_seconds() == 600

    services.finish_attempt(attempt)
    reopen = _url("reopen_attempt", rl, lti_user_pk=student.pk, attempt_pk=attempt.pk)
    assert staff.post(extend, {"minutes": "10"}).status_code == 409
    assert staff.post(reopen, {"minutes": "20"}).status_code == 302
    attempt.refresh_from_db()
    # It was handed in with 25 minutes left on its clock (15 + 10): reopening for 20 never shortens that.
    assert not attempt.is_finished and (attempt.closes_at - attempt.started_at).total_seconds() == 25 * 60


def test_an_accommodation_granted_after_a_timeout_offers_to_reopen_it():
    placement, rl, student, teacher, staff, learner, attempt = _setup(slugs=[FIRST])
    services.show_question(attempt, FIRST)
    QuestionState.objects.filter(attempt=attempt, slug=FIRST).update(deadline=timezone.now() - timedelta(minutes=1))
    attempt = services.refresh_attempt(attempt)
    assert attempt.is_finished
    page = staff.get(_url("student", rl, lti_user_pk=student.pk)).content.decode()
    assert "Time ran out before this accommodation" not in page

    staff.post(_url("accommodation", rl, lti_user_pk=student.pk), {"time_multiplier": "2", "extra_attempts": "0"})
    page = staff.get(_url("student", rl, lti_user_pk=student.pk)).content.decode()
    assert "Time ran out before this accommodation" in page and "Reopen with the extra time" in page
    response = staff.post(_url("reopen_expired", rl, lti_user_pk=student.pk))
    assert response.status_code == 302
    assert _state(attempt).status == Status.OPEN
    assert services.submit_answer(attempt, FIRST, "A").correct
    assert staff.post(_url("reopen_expired", rl, lti_user_pk=student.pk)).status_code == 409


# --- Who may ----------------------------------------------------------------------------------------------------


def test_students_and_other_courses_get_nothing():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    override = _question_url("override", rl, student, attempt)
    posts = [
        override,
        _question_url("reopen_question", rl, student, attempt),
        _url("reopen_attempt", rl, lti_user_pk=student.pk, attempt_pk=attempt.pk),
        _url("extend_attempt", rl, lti_user_pk=student.pk, attempt_pk=attempt.pk),
        _url("reopen_expired", rl, lti_user_pk=student.pk),
    ]
    for target in posts:
        assert learner.post(target, {"points": "1", "comment": "mine", "minutes": "5"}).status_code == 403
    assert learner.get(_url("audit", rl)).status_code == 403
    assert learner.get(_url("audit_csv", rl)).status_code == 403

    # Another course's student (same platform) and another student's attempt: 404, as an id that does not exist.
    other = PlacementFactory(slugs=[FIRST])
    stranger = student_for(other.resource_link)
    strangers_attempt = services.start_attempt(other, stranger)
    assert staff.get(_question_url("override", rl, stranger, strangers_attempt)).status_code == 404
    classmate = student_for(rl)
    assert staff.get(_question_url("override", rl, classmate, attempt)).status_code == 404
    assert staff.get(_question_url("override", rl, student, attempt, slug="no-such-question")).status_code == 404
    assert _state(attempt).override_points is None and not AuditEntry.objects.exists()


def test_an_oversized_form_is_refused_with_a_413():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    response = staff.post(_question_url("override", rl, student, attempt), {"points": "1", "comment": "x" * 20_000})
    assert response.status_code == 413 and not AuditEntry.objects.exists()
    # Every instructor form has the same guard, before anything is parsed or stored.
    one = {"lti_user_pk": student.pk, "attempt_pk": attempt.pk}
    for url in (_url("settings", rl), _url("accommodation", rl, lti_user_pk=student.pk),
                _url("reopen_expired", rl, lti_user_pk=student.pk), _url("reopen_attempt", rl, **one),
                _url("extend_attempt", rl, **one), _question_url("reopen_question", rl, student, attempt)):
        response = staff.post(url, {"mode": "practice", "challenges": [FIRST], "note": "x" * 20_000})
        assert response.status_code == 413 and b"too large" in response.content, url
    placement.refresh_from_db()
    assert placement.mode_slug == "timed" and not AuditEntry.objects.exists()


# --- Audit trail ------------------------------------------------------------------------------------------------


def test_the_audit_page_and_csv_list_every_action_with_who_when_what_before_and_after():
    placement, rl, student, teacher, staff, learner, attempt = _setup()
    staff.post(_url("accommodation", rl, lti_user_pk=student.pk), {"time_multiplier": "1.5", "extra_attempts": "1"})
    staff.post(_question_url("override", rl, student, attempt), {"points": "1", "comment": "=HYPERLINK(\"x\")"})
    page = staff.get(_url("audit", rl))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Points overridden" in text and "Accommodation granted" in text and "Grace Teacher" in text
    assert "Ada Student" in text and "time_multiplier" in text
    assert staff.get(_url("audit", rl) + "?page=x").status_code == 400
    assert staff.get(_url("audit", rl) + "?page=9999").status_code == 200  # the last page

    body = staff.get(_url("audit_csv", rl)).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["when", "action", "by", "by_lti_sub"]
    assert [row[1] for row in rows[1:]] == ["accommodation", "override_points"]
    override_row = rows[2]
    assert override_row[2] == "Grace Teacher" and override_row[4] == "Ada Student" and override_row[7] == FIRST
    assert '"points": 0' in override_row[8] and '"points": 1.0' in override_row[9]
    assert override_row[10].startswith("'=")  # a formula is neutralised
    dashboard = staff.get(_url("dashboard", rl)).content.decode()
    assert _url("audit", rl) in dashboard
