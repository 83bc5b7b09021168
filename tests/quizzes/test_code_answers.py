"""Code challenges in the player: submission through the grading app, partial credit from its result, the gradebook
only once the grade is final, the live status hook and the loss-curve chart."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from grading import services as grading
from grading.models import CodeSubmission
from quizzes import content, services
from quizzes.models import Attempt, CodeAnswer, QuestionState
from tests.factories import MembershipFactory, ResourceLinkFactory
from tests.quizzes.factories import PlacementFactory, establish_launch, instructor_for, student_for

pytestmark = pytest.mark.django_db

BLOCK = "resnet-block-projection"
EXPERIMENT = "skip-gradient-experiment"


def _start(mode="timed", slugs=(BLOCK,)):
    placement = PlacementFactory(mode=mode, slugs=list(slugs))
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    for slug in slugs:
        services.show_question(attempt, slug)
    return placement, user, attempt


def _grade(submission: CodeSubmission, score: float, max_score: float = 4.0, **extra) -> None:
    """The grading app's own verb for a final result (what its worker calls)."""
    grading.finish_grading(
        submission.pk,
        status=CodeSubmission.Status.GRADED,
        score=score,
        max_score=max_score,
        checks=[{"name": "output shape", "passed": score == max_score, "points": score, "max_points": max_score,
                 "feedback": "checked (1, 128, 32, 32)"}],
        feedback="ok" if score == max_score else "some checks failed",
        **extra,
    )


def test_submitting_code_stores_a_submission_pinned_to_the_placements_version_and_uses_an_attempt():
    placement, user, attempt = _start()
    answer = services.submit_code(attempt, BLOCK, "import torch\n")
    submission = answer.submission
    assert submission.challenge_slug == BLOCK and submission.challenge_version == placement.challenge_set.version
    assert submission.lti_user == user and submission.status == CodeSubmission.Status.QUEUED
    state = attempt.states.get(slug=BLOCK)
    assert state.attempts_used == 1 and state.is_open and answer.is_pending


def test_a_second_submission_waits_for_the_first_result():
    _, _, attempt = _start()
    services.submit_code(attempt, BLOCK, "x = 1\n")
    with pytest.raises(services.Refused, match="still being graded"):
        services.submit_code(attempt, BLOCK, "x = 2\n")
    assert CodeSubmission.objects.count() == 1


def test_partial_credit_is_the_share_of_the_checks_scaled_to_the_points():
    placement, _, attempt = _start()
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    _grade(answer.submission, 3.0)
    state = attempt.states.get(slug=BLOCK)
    assert state.points == pytest.approx(0.75 * 2)  # 2 points, first attempt
    assert state.status == QuestionState.Status.OPEN  # two more attempts to get it fully right
    second = services.submit_code(attempt, BLOCK, "x = 2\n")
    _grade(second.submission, 4.0)
    state.refresh_from_db()
    assert state.status == QuestionState.Status.CORRECT
    assert state.points == pytest.approx(1.5)  # the best: 0.75 x 2 beats 1.0 x 2 x 0.5 on attempt 2


def test_three_imperfect_submissions_exhaust_a_code_challenge():
    _, _, attempt = _start()
    for _ in range(3):
        answer = services.submit_code(attempt, BLOCK, "x = 1\n")
        _grade(answer.submission, 1.0)
    state = attempt.states.get(slug=BLOCK)
    assert state.status == QuestionState.Status.EXHAUSTED
    with pytest.raises(services.Refused):
        services.submit_code(attempt, BLOCK, "x = 1\n")


def test_a_failed_submission_scores_zero():
    _, _, attempt = _start()
    answer = services.submit_code(attempt, BLOCK, "raise SystemExit\n")
    grading.finish_grading(answer.submission.pk, status=CodeSubmission.Status.FAILED, feedback="crashed")
    answer.refresh_from_db()
    assert answer.points == 0.0 and attempt.states.get(slug=BLOCK).points == 0.0


def test_the_gradebook_hears_nothing_while_code_is_graded_and_the_final_score_after(recorded_scores):
    placement, user, attempt = _start(slugs=("why-skip-connections", BLOCK))
    services.submit_answer(attempt, "why-skip-connections", "A")
    assert len(recorded_scores) == 1
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    services.finish_attempt(attempt)
    assert len(recorded_scores) == 1  # finished while grading: no "Pending" that could wipe the grade
    attempt.refresh_from_db()
    assert attempt.is_finished
    _grade(answer.submission, 4.0)
    final = recorded_scores[-1]
    assert (final["activity_progress"], final["grading_progress"]) == ("Completed", "FullyGraded")
    assert final["score_given"] == pytest.approx(placement.points)  # 1 + 2 of 3 points
    assert Attempt.objects.get(pk=attempt.pk).badge == "ResNet Mastery Badge"


def test_a_submission_made_in_time_counts_even_when_graded_after_the_deadline():
    _, _, attempt = _start()
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    QuestionState.objects.filter(attempt=attempt).update(deadline=attempt.started_at)  # the clock ran out meanwhile
    assert services.finalise_expired_attempts() == 0  # a question being graded is not expired under it
    _grade(answer.submission, 4.0)
    assert attempt.states.get(slug=BLOCK).status == QuestionState.Status.CORRECT


def test_practice_code_answers_never_reach_the_gradebook(recorded_scores):
    _, _, attempt = _start(mode="practice")
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    _grade(answer.submission, 4.0)
    assert recorded_scores == []


def test_submissions_of_other_apps_are_ignored():
    submission = grading.submit_code(challenge_slug=BLOCK, code="x = 1\n")
    _grade(submission, 4.0)
    assert not CodeAnswer.objects.exists()


def test_the_code_endpoint_submits_and_the_page_polls_the_grading_status():
    placement = PlacementFactory(mode="timed", slugs=[EXPERIMENT])
    rl = placement.resource_link
    user = student_for(rl)
    client = Client()
    establish_launch(client, rl, user)
    client.post(reverse("quizzes:start", kwargs={"resource_link_pk": rl.pk}))
    attempt = Attempt.objects.get()
    kwargs = {"resource_link_pk": rl.pk, "slug": EXPERIMENT}
    client.post(reverse("quizzes:open_question", kwargs=kwargs), {"attempt": attempt.pk})
    code = content.get_code_challenge(EXPERIMENT).starter_code
    response = client.post(reverse("quizzes:code", kwargs=kwargs), {"attempt": attempt.pk, "code": code})
    assert response.status_code == 302
    submission = CodeSubmission.objects.get()
    assert submission.code == code
    page = client.get(reverse("quizzes:question", kwargs=kwargs)).content.decode()
    status_url = reverse("grading:status", kwargs={"submission_id": submission.pk})
    assert f'data-status-url="{status_url}"' in page and "Being graded" in page
    assert client.get(status_url).json()["status"] == "queued"

    curves = {"plain": [1.0, 0.9, 0.85, 0.84], "residual": [1.0, 0.5, 0.2, 0.1]}
    artifacts = {"loss_curves": {"series": curves, "grad_norms": {"plain": 1e-6, "residual": 0.3}}}  # the grader's
    _grade(submission, 2.0, artifacts=artifacts)
    page = client.get(reverse("quizzes:question", kwargs=kwargs)).content.decode()
    assert "data-status-url" not in page
    assert '<svg viewBox="0 0 600 300" role="img"' in page
    assert page.count("<polyline") == 2 and "final loss 0.1000" in page
    assert "plain 1e-06, with skip connections 0.3" in page
    assert "some checks failed" in page and "checked (1, 128, 32, 32)" in page


def test_an_exam_student_polling_the_grading_status_learns_nothing_of_the_result_before_the_exam_closes():
    placement, user, attempt = _start(mode="exam", slugs=(BLOCK, EXPERIMENT))  # the exam stays open after BLOCK
    rl = placement.resource_link
    student, instructor = Client(), Client()
    establish_launch(student, rl, user)
    establish_launch(instructor, rl, instructor_for(rl), staff=True)
    submission = services.submit_code(attempt, BLOCK, content.get_code_challenge(BLOCK).solution_source).submission
    _grade(submission, 1.0)
    status_url = reverse("grading:status", kwargs={"submission_id": submission.pk})

    held = student.get(status_url).json()
    assert held["final"] is True and held["held_back"] is True
    assert held["score"] is None and held["checks"] == [] and "some checks failed" not in held["feedback"]
    assert instructor.get(status_url).json()["score"] == 1.0  # staff always see the result

    services.finish_attempt(attempt)
    shown = student.get(status_url).json()
    assert shown["score"] == 1.0 and shown["checks"][0]["name"] == "output shape"


def test_a_code_answers_status_is_for_the_staff_of_the_course_it_was_made_in_only():
    """One registration, two courses, the student in both: the instructor of the other course gets 404 (issue 11)."""
    placement, user, attempt = _start()
    rl = placement.resource_link
    other_rl = ResourceLinkFactory(context__deployment=rl.context.deployment)
    MembershipFactory(context=other_rl.context, lti_user=user)
    submission = services.submit_code(attempt, BLOCK, "x = 1\n").submission
    _grade(submission, 1.0)
    status_url = reverse("grading:status", kwargs={"submission_id": submission.pk})
    here, elsewhere = Client(), Client()
    establish_launch(here, rl, instructor_for(rl), staff=True)
    establish_launch(elsewhere, other_rl, instructor_for(other_rl), staff=True)

    assert elsewhere.get(status_url).status_code == 404
    assert here.get(status_url).json()["score"] == 1.0


def test_the_code_form_refuses_a_choice_question_and_empty_code():
    placement, _, attempt = _start(slugs=("why-skip-connections", BLOCK))
    with pytest.raises(services.InvalidInput, match="answered with a choice"):
        services.submit_code(attempt, "why-skip-connections", "x = 1\n")
    with pytest.raises(services.InvalidInput, match="empty"):
        services.submit_code(attempt, BLOCK, "   \n")
    with pytest.raises(services.InvalidInput, match="answered with code"):
        services.submit_answer(attempt, BLOCK, "A")
    assert not CodeSubmission.objects.exists()


@pytest.mark.parametrize("code", ["a = '\ud800'\n", "a = 1\x00\n"], ids=["lone-surrogate", "nul"])
def test_code_no_database_can_store_is_refused_and_uses_no_attempt(code):
    """The one validation grading does (quizzes used its own copy, which crashed on a lone surrogate)."""
    placement, _, attempt = _start()
    with pytest.raises(services.InvalidInput, match="NUL or another character that is not text"):
        services.submit_code(attempt, BLOCK, code)
    assert not CodeSubmission.objects.exists()
    assert QuestionState.objects.get(attempt=attempt, slug=BLOCK).attempts_used == 0


def test_loss_curves_are_read_from_either_artifact_shape():
    from quizzes.queries import grad_norms, loss_curves

    flat = {"plain": [2, 1], "residual": [2, 0.5], "plain_grad_norm": 0.01, "residual_grad_norm": 0.2}
    nested = {"loss_curves": {"series": {"plain": [2, 1], "residual": [2, 0.5]},
                              "grad_norms": {"plain": 0.01, "residual": 0.2}}}
    for artifacts in (flat, nested):
        assert loss_curves(artifacts) == {"plain": [2.0, 1.0], "residual": [2.0, 0.5]}
        assert grad_norms(artifacts) == {"plain": 0.01, "residual": 0.2}
    assert loss_curves({}) is None and loss_curves({"plain": ["x"], "residual": [1]}) is None
