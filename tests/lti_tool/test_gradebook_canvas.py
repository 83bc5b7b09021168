"""What a Canvas teacher sees of the tool's grades, against the development LMS's Canvas flavour over real HTTP:
one submission per finished attempt dated when it finished, nothing submitted or graded mid-attempt, teachers'
hand-edited grades kept (by default), a clear status when the LMS refuses tokens because of this server's clock."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from lti_tool.devlms.models import Course, Enrollment, Person, Score, Tool
from lti_tool.gradebook import ags, nrps, services
from lti_tool.gradebook.models import ScoreUpdate
from lti_tool.models import LtiUser, Membership, ResourceLink
from quizzes import services as quizzes
from quizzes.models import Attempt, Placement
from tests.lti_tool.gradebook_support import record

pytestmark = pytest.mark.django_db(transaction=True)
State = ScoreUpdate.State
EXT = "https://canvas.instructure.com/lti/submission"
FIRST, SECOND = "why-skip-connections", "skip-block-output-shape"


def canvas_student(dev_lms, user="student1"):
    """Register as Canvas, launch as `user`: (their Placement, their LtiUser)."""
    if dev_lms.tool is None:
        dev_lms.register_tool(style="canvas")
    launch = dev_lms.launch(user=user)
    assert launch.response.status_code == 200, launch.response.text[:500]
    return Placement.objects.get(), LtiUser.objects.get(sub=dev_lms.sub(user))


def deliver():
    return services.deliver_due_now(include_not_due=True)


def ms(moment):
    """AGS times carry milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_answers_mid_attempt_make_no_submission_and_each_finished_attempt_makes_one(dev_lms):
    placement, student = canvas_student(dev_lms)
    Placement.objects.filter(pk=placement.pk).update(rules={**placement.rules, "restartable": True})
    placement.refresh_from_db()
    attempt = quizzes.start_attempt(placement, student)
    quizzes.show_question(attempt, FIRST)
    quizzes.submit_answer(attempt, FIRST, "A")  # correct: the score changes mid-attempt
    deliver()
    cell = dev_lms.result(user="student1")
    assert cell["attempt"] == 0 and cell["submitted_at"] is None  # Canvas shows nothing submitted...
    assert cell["score_given"] is None  # ...and no partial grade
    sent = dev_lms.scores(user="student1")
    assert [e["payload"][EXT]["new_submission"] for e in sent] == [False]
    assert sent[0]["payload"]["gradingProgress"] == "Pending"

    quizzes.finish_attempt(attempt)
    deliver()
    attempt.refresh_from_db()
    cell = dev_lms.result(user="student1")
    assert cell["attempt"] == 1 and cell["submitted_at"] == ms(attempt.finished_at)
    assert cell["grading_progress"] == "FullyGraded" and cell["score_given"] == pytest.approx(100 / 13, rel=1e-3)

    second = quizzes.start_attempt(placement, student)
    quizzes.show_question(second, FIRST)
    quizzes.submit_answer(second, FIRST, "A")
    deliver()
    assert dev_lms.result(user="student1")["attempt"] == 1  # still one: the new attempt is not handed in yet
    quizzes.finish_attempt(second)
    deliver()
    second.refresh_from_db()
    cell = dev_lms.result(user="student1")
    assert cell["attempt"] == 2 and cell["submitted_at"] == ms(second.finished_at)
    finals = [e for e in dev_lms.scores(user="student1") if e["payload"]["gradingProgress"] == "FullyGraded"]
    assert [e["payload"][EXT]["new_submission"] for e in finals] == [True, True]


def test_the_clock_running_out_hands_in_the_attempt_dated_when_it_ran_out(dev_lms):
    placement, student = canvas_student(dev_lms)
    rules = {**placement.rules, "timer": "whole_set", "set_time_limit_s": 60}
    Placement.objects.filter(pk=placement.pk).update(rules=rules)
    placement.refresh_from_db()
    started = timezone.now() - timedelta(minutes=10)
    attempt = quizzes.start_attempt(placement, student, now=started)
    quizzes.show_question(attempt, FIRST, now=started + timedelta(seconds=5))
    quizzes.submit_answer(attempt, FIRST, "A", now=started + timedelta(seconds=10))
    assert quizzes.finalise_expired_attempts() == 1  # nobody came back: the sweeper closes it
    deliver()
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.EXPIRED
    assert attempt.finished_at == started + timedelta(seconds=60)
    cell = dev_lms.result(user="student1")
    assert cell["attempt"] == 1 and cell["submitted_at"] == ms(attempt.finished_at)
    assert cell["grading_progress"] == "FullyGraded"


def test_a_regrade_of_the_same_attempt_opens_no_new_submission(dev_lms):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    finished = timezone.now() - timedelta(minutes=2)
    record(link, student, 3.0, submitted_at=finished)
    record(link, student, 4.0, submitted_at=finished)  # a code answer graded after the finish
    deliver()  # the first was superseded before it went out: the newer one opens the submission
    record(link, student, 5.0, submitted_at=finished)
    deliver()
    cell = dev_lms.result(user="student1")
    assert cell["attempt"] == 1 and cell["submitted_at"] == ms(finished)
    assert cell["score_given"] == pytest.approx(100.0)
    sent = [e["payload"][EXT] for e in dev_lms.scores(user="student1")]
    assert [e["new_submission"] for e in sent] == [True, False]


def test_a_grade_changed_by_hand_is_kept_and_the_instructor_is_told(dev_lms):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    record(link, student, 3.0, submitted_at=timezone.now())
    deliver()
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(60.0)
    assert dev_lms.grade_by_hand(95.0).status_code == 200  # the teacher in SpeedGrader
    kept = record(link, student, 4.0, submitted_at=timezone.now())  # e.g. a later code grading
    assert deliver() == {State.KEPT: 1}
    cell = dev_lms.result(user="student1")
    assert cell["score_given"] == 95.0 and cell["grader"] == "teacher"
    status = services.sync_status(link)[student.pk]
    assert status["state"] == "kept"
    assert "teacher changed this grade in the LMS by hand" in status["detail"]
    assert "Send all grades again" in status["detail"] and "timestamp" not in status["detail"]
    kept.refresh_from_db()
    assert kept.state == State.KEPT
    teacher = dev_lms.launch(user="instructor1").session
    url = dev_lms.base_url + reverse("lti_tool:gradebook_status", kwargs={"resource_link_pk": link.pk})
    page = teacher.get(url, timeout=30).text
    assert "Teacher&#x27;s grade kept" in page and "changed this grade in the LMS by hand" in page

    # The instructor asks for the tool's grades: that goes over the teacher's grade.
    assert services.resend_all(link) == 1
    deliver()
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)
    assert services.sync_status(link)[student.pk]["state"] == "delivered"


def test_a_teachers_grade_before_the_tools_first_score_is_kept(dev_lms):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    services.resolve_line_item(link, score_maximum=5.0)
    dev_lms.grade_by_hand(70.0)
    record(link, student, 2.0, submitted_at=timezone.now())
    deliver()
    assert dev_lms.result(user="student1")["score_given"] == 70.0
    assert dev_lms.scores(user="student1")[0]["payload"][EXT]["prioritize_non_tool_grade"] is True


@override_settings(GRADEBOOK_TEACHER_GRADES="overwrite")
def test_the_overwrite_policy_replaces_a_hand_grade(dev_lms):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    record(link, student, 3.0, submitted_at=timezone.now())
    deliver()
    dev_lms.grade_by_hand(95.0)
    record(link, student, 4.0, submitted_at=timezone.now())
    assert deliver() == {State.DELIVERED: 1}
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)
    assert all("prioritize_non_tool_grade" not in e["payload"][EXT] for e in dev_lms.scores(user="student1"))


def test_a_token_refused_for_this_servers_clock_says_so(dev_lms, monkeypatch):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()

    # This server's clock runs 45 s ahead of the LMS's (only the tool's token code reads the fast one).
    fast_clock = SimpleNamespace(time=lambda: time.time() + 45, monotonic=time.monotonic)
    monkeypatch.setattr(ags, "time", fast_clock)
    update = record(link, student, 3.0, submitted_at=timezone.now() - timedelta(minutes=1))
    assert deliver() == {State.WAITING: 1}
    status = services.sync_status(link)[student.pk]
    assert status["state"] == "waiting"
    assert "the LMS refused our token: check this server's clock (NTP)" in status["detail"].replace("The", "the", 1)
    assert "must not be in the future" in status["detail"] and "IT must act" in status["detail"]
    monkeypatch.setattr(ags, "time", time)  # IT fixed the clock
    assert services.deliver_score_update(update.pk, ignore_schedule=True) == State.DELIVERED


def test_a_roster_of_2500_arrives_whole(dev_lms):
    """Canvas pages NRPS by 10 unless asked: 200 pages of 10 would have cut this roster at 2,000."""
    canvas_student(dev_lms)
    course = Course.objects.get(slug="course1")
    people = Person.objects.bulk_create(
        Person(username=f"crowd{n}", sub=f"crowd-{n}", given_name="Crowd", family_name=str(n), email=f"c{n}@x.edu")
        for n in range(2500)
    )
    Enrollment.objects.bulk_create(Enrollment(course=course, person=person) for person in people)
    link = ResourceLink.objects.get()
    assert services.sync_roster(link.context) == 2506  # 2,500 + the seed's five students and an instructor
    assert Membership.objects.filter(context=link.context, is_learner=True).count() == 2505
    assert nrps.truncated_notice(link.context) == ""


def test_a_stale_timestamp_refusal_blames_the_clock_not_a_hand_edit(dev_lms):
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    record(link, student, 3.0, submitted_at=timezone.now())
    deliver()
    # Another copy of the tool (or this one before its clock was set back) sent a score dated an hour ahead.
    Score.objects.update(timestamp=timezone.now() + timedelta(hours=1))
    update = record(link, student, 4.0, submitted_at=timezone.now())
    assert deliver() == {State.REFUSED: 1}
    update.refresh_from_db()
    assert update.last_status_code == 400
    assert "dated later than this one" in update.last_error and "does not cause it" in update.last_error
    assert "NTP" in update.last_error and "Send all grades again" in update.last_error


def test_moodle_gets_no_canvas_extension(dev_lms):
    dev_lms.register_tool(style="moodle")
    dev_lms.launch(user="student1")
    link, student = ResourceLink.objects.get(), LtiUser.objects.get(sub=dev_lms.sub("student1"))
    record(link, student, 3.0, submitted_at=timezone.now())
    assert deliver() == {State.DELIVERED: 1}
    assert EXT not in dev_lms.scores(user="student1")[0]["payload"]


def test_an_lms_that_lets_the_tool_read_no_results_still_gets_every_grade(dev_lms):
    """The results scope refused at the token endpoint: the tool cannot tell a hand edit, so it sends as before."""
    _, student = canvas_student(dev_lms)
    link = ResourceLink.objects.get()
    link.context.ags_scopes = []  # the launch did not say which scopes were granted
    link.context.save(update_fields=["ags_scopes"])
    tool = Tool.objects.get()
    tool.scopes = " ".join(s for s in tool.scope_list if not s.endswith("result.readonly"))
    tool.save(update_fields=["scopes"])
    record(link, student, 3.0, submitted_at=timezone.now())
    record(link, student, 4.0, submitted_at=timezone.now())
    deliver()
    record(link, student, 5.0, submitted_at=timezone.now())
    assert deliver() == {State.DELIVERED: 1}
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(100.0)
