"""End to end with a real Celery worker process and the Redis broker: scores reach the development LMS's gradebook
through `lti_tool.tasks.deliver_score`, survive LMS faults, and survive a worker killed in the middle of a delivery.

The worker is `celery -A config worker -Q default --pool solo` on pytest-django's test database; the test process
plays the web server (record_score inside a transaction, as the challenge player does) and the platform admin.
"""

from __future__ import annotations

import pytest

from lti_tool.gradebook.models import ScoreUpdate
from lti_tool.models import Membership, ResourceLink
from tests.lti_support import choice_options, parse_forms
from tests.lti_tool.gradebook_support import launched, record
from tests.workers import CeleryWorker, purge_queues

pytestmark = pytest.mark.worker

State = ScoreUpdate.State
# The seed challenge set's first question and its right answer (content/resnet/set.yaml).
FIRST_ANSWER = "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks."
# Fast retries and a short HTTP timeout, so a test sees many attempts (and a lease that ends) in seconds.
WORKER_ENV = {
    "GRADEBOOK_BACKOFF_BASE_S": "0.3",
    "GRADEBOOK_BACKOFF_CAP_S": "1.5",
    "LTI_HTTP_TIMEOUT_S": "1.5",
}


@pytest.fixture
def start_worker(dev_lms, tmp_path):
    """start_worker(beat=False) -> Worker; every worker started is stopped before the database is flushed."""
    purge_queues("default")
    workers: list[CeleryWorker] = []

    def start(*, beat: bool = False) -> CeleryWorker:
        workers.append(CeleryWorker(tmp_path, queues="default", name="gradebook-test", beat=beat, env=WORKER_ENV))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def state_of(update: ScoreUpdate) -> str:
    update.refresh_from_db()
    return update.state


def test_a_score_reaches_the_dev_lms_gradebook_through_the_worker(dev_lms, start_worker):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    start_worker()
    update = record(link, student, 4.0)
    assert dev_lms.wait_for(lambda: state_of(update) == State.DELIVERED, timeout=60), update.last_error
    cell = dev_lms.result(user="student1")
    assert cell["score_given"] == pytest.approx(80.0) and cell["comment"] == "4 of 5"
    assert [e["status"] for e in dev_lms.scores(user="student1")] == [200]


def _post_form(session, page, action_part: str, **fields):
    forms = [f for f in parse_forms(page.text, page.url) if action_part in f.action]
    assert forms, f"no form posting to {action_part!r} in {page.url}:\n{page.text[:1500]}"
    return session.post(forms[0].action, data={**forms[0].fields, **fields}, timeout=30)


def test_a_student_who_answers_the_first_question_right_sees_the_grade_in_the_lms(dev_lms, start_worker):
    """As a new user would: Moodle-like LMS, the seed's first question answered correctly in the player."""
    dev_lms.register_tool(style="moodle")
    start_worker()
    learner = dev_lms.launch(user="student1")
    session = learner.session
    question = _post_form(session, learner.response, "/start/")
    question = _post_form(session, question, "/open/")
    answered = _post_form(session, question, "/answer/", choice=choice_options(question.text)[FIRST_ANSWER][1])
    assert answered.status_code == 200 and '<span class="ok">correct</span>' in answered.text
    # No delivery by hand: the worker sends it.
    result = dev_lms.wait_for(lambda: dev_lms.result(user="student1"), timeout=60)
    assert result is not None and result["grading_progress"] == "FullyGraded"
    assert result["score_given"] == pytest.approx(100 * 1 / 13, rel=1e-3)  # 1 of 13 points, 100-point column
    assert [e["status"] for e in dev_lms.scores(user="student1")] == [200]


def test_an_instructor_sees_who_has_not_started_without_pressing_anything(dev_lms, start_worker):
    """The instructor's launch queues a roster sync; the worker reads the roster; the dashboard lists the students."""
    dev_lms.register_tool(style="canvas")
    start_worker()
    dev_lms.launch(user="student1")  # one student has launched (no attempt yet)
    teacher = dev_lms.launch(user="instructor1")
    link = ResourceLink.objects.get()
    assert dev_lms.wait_for(
        lambda: Membership.objects.filter(context=link.context, is_learner=True).count() == 5, timeout=60
    )
    page = teacher.session.get(teacher.response.url, timeout=30).text
    assert "Not started (5)" in page and "Grace Hopper" in page


def test_503_then_429_then_an_unresponsive_lms_end_with_the_right_grade_and_no_duplicates(dev_lms, start_worker):
    dev_lms.register_tool(style="moodle")
    link, student, _ = launched(dev_lms)
    start_worker()

    dev_lms.set_fault("down")  # 503 to everything, until changed
    first = record(link, student, 2.0)
    assert dev_lms.wait_for(lambda: dev_lms.fault_hits() >= 3, timeout=60)
    dev_lms.set_fault("429", seconds=1)  # rate limited, Retry-After: 1
    second = record(link, student, 4.0)  # a better answer while the LMS is away: this is the grade
    assert dev_lms.wait_for(lambda: dev_lms.fault_hits() >= 2, timeout=60)
    dev_lms.set_fault("slow", seconds=2.5)  # answers slower than the tool waits (timeouts)
    assert dev_lms.wait_for(lambda: dev_lms.fault_hits() >= 2, timeout=60)
    second.refresh_from_db()
    assert second.state == State.WAITING and second.attempts >= 1

    dev_lms.clear_faults()
    assert dev_lms.wait_for(lambda: state_of(second) == State.DELIVERED, timeout=60), second.last_error
    assert state_of(first) == State.SUPERSEDED
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)
    accepted = [e for e in dev_lms.scores(user="student1") if e["status"] == 200]
    assert len(accepted) == 1 and accepted[0]["payload"]["scoreGiven"] == 4.0


def test_a_worker_killed_mid_delivery_is_made_good_by_the_sweeper(dev_lms, start_worker):
    dev_lms.register_tool(style="canvas")
    link, student, _ = launched(dev_lms)
    doomed = start_worker()
    dev_lms.set_fault("slow", seconds=1.0)  # the LMS takes its time: the worker is inside the call...
    update = record(link, student, 4.0)
    assert dev_lms.wait_for(lambda: dev_lms.fault_hits() >= 1, timeout=60, interval=0.02)
    doomed.kill()  # ...when its node dies
    dev_lms.clear_faults()
    update.refresh_from_db()
    assert update.state == State.WAITING and update.attempts == 1 and update.claimed_until is not None

    # A new worker with the beat: the broker will not hand the unacknowledged message back for an hour, the sweeper
    # re-enqueues the row as soon as the dead worker's lease is over.
    start_worker(beat=True)
    assert dev_lms.wait_for(lambda: state_of(update) == State.DELIVERED, timeout=120), update.last_error
    assert dev_lms.result(user="student1")["score_given"] == pytest.approx(80.0)
    accepted = [e for e in dev_lms.scores(user="student1") if e["status"] == 200]
    # The dead worker's request may have reached the LMS before it died: a repeat carries the same timestamp.
    assert 1 <= len(accepted) <= 2
    assert all(e["payload"] == accepted[0]["payload"] for e in accepted)
