"""Scores and rosters against the development LMS (Canvas- and Moodle-like semantics) over real HTTP.

The tool registers by Dynamic Registration and is launched through the whole OIDC flow; scores are recorded as the
challenge player records them and delivered in this process (the Celery worker path is test_gradebook_worker.py).
"""

from __future__ import annotations

import re

import pytest
import requests
from django.urls import reverse

from lti_tool.gradebook import services
from lti_tool.gradebook.models import LineItem, ScoreUpdate
from lti_tool.models import LtiUser, Membership
from tests.lti_tool.gradebook_support import launched, record

State = ScoreUpdate.State


def deliver_all():
    return services.deliver_due_now(include_not_due=True)


def accepted(dev_lms, user="student1", resource_link="link1"):
    return [e for e in dev_lms.scores(resource_link=resource_link, user=user) if e["status"] == 200]


def test_canvas_score_reaches_the_gradebook_and_a_regrade_replaces_it(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    record(link, student, 4.0, comment="4 of 5 checks passed")
    assert deliver_all() == {"delivered": 1}
    cell = dev_lms.result(user="student1")
    assert cell["score_given"] == pytest.approx(80.0)  # rescaled to the 100-point column
    assert cell["grading_progress"] == "FullyGraded" and cell["comment"] == "4 of 5 checks passed"
    record(link, student, 5.0, comment="5 of 5 checks passed")  # a regrade
    deliver_all()
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(100.0)
    first, second = accepted(dev_lms)
    ext = "https://canvas.instructure.com/lti/submission"
    assert first["payload"][ext]["new_submission"] is True
    assert second["payload"][ext]["new_submission"] is False
    assert len(dev_lms.scores(user="student1")) == 2  # nothing else was sent


def test_canvas_pending_keeps_the_grade_until_the_final_score(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    record(link, student, 3.0)
    deliver_all()
    record(link, student, None, grading="Pending", activity="Submitted")  # a code answer is being graded
    deliver_all()
    cell = dev_lms.result(user="student1")
    assert cell["grading_progress"] == "Pending" and cell["score_given"] == pytest.approx(60.0)
    record(link, student, 4.0)
    deliver_all()
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)


def test_moodle_never_gets_pending_and_scores_go_before_the_type_id_query(dev_lms):
    dev_lms.register_tool(style="moodle")
    link, student, _ = launched(dev_lms)
    assert "type_id=" in link.lineitem_url
    record(link, student, 3.0)
    deliver_all()
    pending = record(link, student, None, grading="Pending", activity="Submitted")
    final = record(link, student, 4.0)  # recorded in the same second: Moodle compares whole seconds
    deliver_all()
    assert pending.state == State.SKIPPED
    final.refresh_from_db()
    assert final.state == State.DELIVERED
    sent = dev_lms.scores(user="student1")
    assert [e["status"] for e in sent] == [200, 200]
    assert [e["payload"]["gradingProgress"] for e in sent] == ["FullyGraded", "FullyGraded"]
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)


def test_a_link_without_a_column_gets_one_created_once_and_reused(dev_lms):
    dev_lms.register_tool(style="moodle")
    link, student, _ = launched(dev_lms, resource_link="link2")
    assert link.lineitem_url == ""
    other_link, other, _ = launched(dev_lms, user="student2", resource_link="link2")
    assert other_link == link
    before = len(dev_lms.line_items())
    record(link, student, 2.0)
    record(link, other, 5.0)
    assert deliver_all() == {"delivered": 2}
    columns = dev_lms.line_items()
    assert len(columns) == before + 1
    created = columns[-1]
    assert created["resource_link"] == "link2" and created["tag"] == "resnet-challenges"
    assert "type_id=" in LineItem.objects.get(resource_link=link).url  # kept exactly as the platform wrote it
    assert dev_lms.result(resource_link="link2", user="student2")["score_given"] == pytest.approx(
        5.0 / 5.0 * created["score_maximum"]
    )


@pytest.mark.parametrize(("style", "status"), [("canvas", 422), ("moodle", 400)])
def test_a_student_who_left_the_course_is_refused_explained_and_resent_after_the_fix(dev_lms, style, status):
    dev_lms.register_tool(style=style)
    link, student, _ = launched(dev_lms)
    dev_lms.unenroll("student1")
    record(link, student, 4.0)
    assert deliver_all() == {"refused": 1}
    entry = services.sync_status(link)[student.pk]
    assert entry["state"] == "refused"
    assert "enrol" in entry["detail"] and "Send all grades again" in entry["detail"]
    assert dev_lms.scores(user="student1")[-1]["status"] == status
    assert deliver_all() == {}  # not retried
    dev_lms.enroll("student1")
    assert services.resend_all(link) == 1
    assert deliver_all() == {"delivered": 1}
    assert services.sync_status(link)[student.pk]["state"] == "delivered"
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)


def test_a_concluded_course_is_a_permanent_refusal(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    dev_lms.conclude_course()
    record(link, student, 4.0)
    assert deliver_all() == {"refused": 1}
    assert "concluded" in services.sync_status(link)[student.pk]["detail"]


def test_expired_access_tokens_are_refreshed(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    record(link, student, 1.0)
    deliver_all()
    assert dev_lms.expire_access_tokens() >= 1
    record(link, student, 2.0)
    assert deliver_all() == {"delivered": 1}
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(40.0)


def test_lms_faults_are_retried_until_the_right_grade_arrives(dev_lms):
    dev_lms.register_tool(style="moodle")
    link, student, _ = launched(dev_lms)
    dev_lms.set_fault("down", count=2)
    record(link, student, 2.0)
    assert deliver_all() == {"waiting": 1}
    dev_lms.set_fault("429", count=1, seconds=1)
    assert deliver_all() == {"waiting": 1}
    record(link, student, 3.0)  # newer score while the older one waits: the newest wins
    assert deliver_all() == {"delivered": 1}
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(60.0)
    assert [e["payload"].get("scoreGiven") for e in accepted(dev_lms)] == [3.0]


# --- Roster (NRPS) ------------------------------------------------------------------------------------------------


def test_an_instructor_launch_refreshes_the_roster_at_most_hourly(dev_lms):
    dev_lms.register_tool(style="moodle")
    link, _, _ = launched(dev_lms, user="instructor1")
    # The launch queued one background sync for the course; more launches within the hour queue none.
    assert services.request_roster_sync(link.context) is False
    launched(dev_lms, user="instructor1")
    assert services.request_roster_sync(link.context) is False
    # What the queued task does (the worker path is in test_gradebook_worker.py).
    assert services.sync_roster_in_background(link.context.pk) == 6
    assert Membership.objects.filter(context=link.context, is_learner=True, from_roster=True).count() == 5


def test_a_student_launch_does_not_refresh_the_roster(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, _, _ = launched(dev_lms, user="student1")
    assert services.request_roster_sync(link.context) is True  # nothing was queued by the student's launch


def test_a_failed_background_roster_sync_lets_the_next_launch_try_again(dev_lms):
    dev_lms.register_tool(style="canvas")
    link, _, _ = launched(dev_lms, user="instructor1")
    dev_lms.set_fault("down", count=5)
    assert services.sync_roster_in_background(link.context.pk) is None
    assert services.request_roster_sync(link.context) is True


@pytest.mark.parametrize("style", ["canvas", "moodle"])
def test_roster_sync_follows_every_page_and_lists_students_who_never_launched(dev_lms, style):
    dev_lms.register_tool(style=style)
    link, _, _ = launched(dev_lms)
    assert "/CourseSection/" in link.context.memberships_url  # paging breaks if the case is lost
    assert services.sync_roster(link.context) == 6  # 5 students and an instructor (Moodle-like: 3 per page)
    members = Membership.objects.filter(context=link.context)
    assert members.filter(is_learner=True).count() == 5
    assert members.filter(is_staff=True).count() == 1
    hopper = LtiUser.objects.get(sub=dev_lms.sub("student3"))
    assert hopper.display_name == "Grace Hopper"
    assert members.get(lti_user=hopper).from_roster is True
    assert services.sync_roster(link.context) == 6  # idempotent
    assert Membership.objects.filter(context=link.context).count() == 6


# --- The instructor's page ----------------------------------------------------------------------------------------


def _csrf(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page[:2000]
    return match.group(1)


def test_instructor_page_shows_each_student_and_repairs(dev_lms, live_server):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    _, leaver, _ = launched(dev_lms, user="student2")
    dev_lms.unenroll("student2")
    record(link, student, 4.0)
    record(link, leaver, 1.0)
    deliver_all()
    _, _, session = launched(dev_lms, user="instructor1")
    url = live_server.url + reverse("lti_tool:gradebook_status", kwargs={"resource_link_pk": link.pk})
    page = session.get(url, timeout=30)
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text and "Delivered" in page.text
    assert "Alan Turing" in page.text and "Refused" in page.text and "enrol" in page.text

    # Sync the roster: the students who never launched appear as "Not started".
    answer = session.post(url, data={"action": "sync_roster", "csrfmiddlewaretoken": _csrf(page.text)}, timeout=30)
    assert answer.status_code == 200 and answer.history and answer.history[0].status_code == 302
    assert "Roster synced: 5 members" in answer.text  # the one who left the course is not on it
    assert "Grace Hopper" in answer.text and "Not started" in answer.text

    # Fix the enrolment, send everything again.
    dev_lms.enroll("student2")
    answer = session.post(url, data={"action": "resend", "csrfmiddlewaretoken": _csrf(answer.text)}, timeout=30)
    assert "2 grades queued to be sent again" in answer.text
    deliver_all()
    assert dev_lms.result(user="student2")["score_given"] == pytest.approx(20.0)
    assert "Refused" not in session.get(url, timeout=30).text.split("<table")[1]


def test_instructor_page_refuses_students_strangers_and_forged_posts(dev_lms, live_server):
    dev_lms.register_tool(style="canvas")
    link, _, student_session = launched(dev_lms)
    url = live_server.url + reverse("lti_tool:gradebook_status", kwargs={"resource_link_pk": link.pk})
    assert student_session.get(url, timeout=30).status_code == 403
    assert requests.get(url, timeout=30).status_code == 403  # no launch at all
    _, _, session = launched(dev_lms, user="instructor1")
    assert session.post(url, data={"action": "resend"}, timeout=30).status_code == 403  # no CSRF token
    page = session.get(url, timeout=30)
    bad = session.post(url, data={"action": "drop_tables", "csrfmiddlewaretoken": _csrf(page.text)}, timeout=30)
    assert bad.status_code == 400
    assert ScoreUpdate.objects.count() == 0
