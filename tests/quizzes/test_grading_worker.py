"""The whole path of a code answer with real parts: a learner launched through the development LMS submits code in
the player's form, a real Celery worker process grades it in the bubblewrap sandbox, the question is scored from
the result and the score reaches the LMS gradebook through the worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grading.models import CodeSubmission
from quizzes import content
from quizzes.models import QuestionState
from tests.lti_support import parse_forms
from tests.workers import CeleryWorker, purge_queues

pytestmark = [pytest.mark.worker, pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]

SLUG = "resnet-block-projection"


@pytest.fixture
def worker(dev_lms, tmp_path):
    """One `celery worker` on the gpu and default queues, connected to the test database; yields its log."""
    purge_queues("gpu", "default")
    process = CeleryWorker(tmp_path, name="quiz-test", env={"GRADING_DEVICE": "cpu"})
    yield process.log
    process.stop()


def _wait_for(predicate, log: Path, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out; worker log:\n{log.read_text()[-4000:]}")


def test_a_reference_solution_submitted_in_the_player_is_graded_by_the_worker_and_reaches_the_gradebook(
    dev_lms, worker
):
    solution = content.get_code_challenge(SLUG).solution_source
    assert solution.strip(), "the reference solution must exist"
    dev_lms.register_tool(style="canvas")
    learner = dev_lms.launch(user="student3")
    session, page = learner.session, learner.response

    def post(page, action_part, **fields):
        form = next(f for f in parse_forms(page.text, page.url) if action_part in f.action)
        return session.post(form.action, data={**form.fields, **fields}, timeout=30)

    post(page, "/start/")
    question = session.get(page.url + f"q/{SLUG}/", timeout=30)
    question = post(question, "/open/")
    assert '<textarea id="code-input" name="code"' in question.text
    submitted = post(question, "/code/", code=solution)
    assert submitted.status_code == 200 and "data-status-url" in submitted.text

    submission = _wait_for(lambda: CodeSubmission.objects.filter(status__in=["graded", "failed"]).first(), worker)
    assert submission.status == "graded", submission.feedback
    assert submission.score == submission.max_score
    state = QuestionState.objects.get(slug=SLUG)
    assert state.status == QuestionState.Status.CORRECT and state.points == 2.0

    graded_page = session.get(question.url, timeout=30)
    assert "data-status-url" not in graded_page.text and "2.00</strong> of 2 points" in graded_page.text

    # Canvas gets the grade when the student finishes (mid-attempt it hears of progress only).
    finished = post(session.get(page.url + "finish/", timeout=30), "/finish/")  # the confirmation step
    assert finished.status_code == 200

    def graded():
        result = dev_lms.result(user="student3")
        return result if result and result["grading_progress"] == "FullyGraded" else None

    result = _wait_for(graded, worker, timeout=60)
    assert result["score_given"] == pytest.approx(100 * 2 / 13, rel=1e-3) and result["attempt"] == 1


def test_a_nul_character_in_the_error_of_submitted_code_is_shown_to_the_student_at_once(dev_lms, worker):
    """PostgreSQL text cannot hold NUL: the sandbox's message is stored with U+FFFD in its place, on the first
    delivery, instead of the submission staying "running" until the sweeper gives up on it."""
    dev_lms.register_tool(style="canvas")
    learner = dev_lms.launch(user="student3")
    session, page = learner.session, learner.response

    def post(page, action_part, **fields):
        form = next(f for f in parse_forms(page.text, page.url) if action_part in f.action)
        return session.post(form.action, data={**form.fields, **fields}, timeout=30)

    post(page, "/start/")
    question = post(session.get(page.url + f"q/{SLUG}/", timeout=30), "/open/")
    submitted = post(question, "/code/", code='raise RuntimeError("boom\\x00boom")\n')
    assert submitted.status_code == 200 and "data-status-url" in submitted.text

    submission = _wait_for(lambda: CodeSubmission.objects.filter(status__in=["graded", "failed"]).first(), worker)
    assert submission.status == "failed" and submission.deliveries == 1 and submission.score == 0.0
    assert "RuntimeError" in submission.feedback and "boom\ufffdboom" in submission.feedback
    assert QuestionState.objects.get(slug=SLUG).attempts_used == 1
    graded_page = session.get(question.url, timeout=30)
    assert "data-status-url" not in graded_page.text and "boom\ufffdboom" in graded_page.text
