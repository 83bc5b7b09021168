"""The rules of the challenge set, held by the services: clocks, grace, attempts, hints, credit, modes, badge,
accommodations, the finaliser and the gradebook calls."""

from __future__ import annotations

import pytest

from quizzes import services
from quizzes.models import Answer, Attempt, QuestionState
from tests.quizzes.factories import PlacementFactory, student_for

pytestmark = pytest.mark.django_db

FIRST = "why-skip-connections"  # answer A
SECOND = "skip-block-output-shape"  # answer D
DEBUG = "debug-skip-connection"  # answer A, 3 minutes
MC = [FIRST, SECOND, "channel-mismatch-block", "skip-loss-curves", DEBUG]
KEYS = {FIRST: "A", SECOND: "D", "channel-mismatch-block": "C", "skip-loss-curves": "B", DEBUG: "A"}


def _start(mode: str = "timed", slugs: list[str] | None = None, clock=None):
    placement = PlacementFactory(mode=mode, slugs=slugs)
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user, now=clock.now if clock else None)
    return placement, user, attempt


def _state(attempt: Attempt, slug: str) -> QuestionState:
    return attempt.states.get(slug=slug)


# --- Clocks -----------------------------------------------------------------------------------------------------


def test_the_clock_starts_when_a_question_is_first_shown_and_its_deadline_is_stored(clock):
    placement, user, attempt = _start(clock=clock)
    assert _state(attempt, FIRST).deadline is None
    clock.advance(30)
    state = services.show_question(attempt, FIRST, now=clock.now)
    assert state.first_shown_at == clock.now
    assert (state.deadline - state.first_shown_at).total_seconds() == 120
    clock.advance(50)  # showing it again (reload, second tab, other device) does not reset it
    again = services.show_question(attempt, FIRST, now=clock.now)
    assert again.deadline == state.deadline
    assert services.question_clock(again, clock.now).remaining_s == 70


def test_the_debug_question_has_three_minutes(clock):
    _, _, attempt = _start(clock=clock)
    state = services.show_question(attempt, DEBUG, now=clock.now)
    assert (state.deadline - state.first_shown_at).total_seconds() == 180


def test_an_answer_within_the_grace_period_is_accepted(clock):
    _, _, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    clock.advance(120 + 4)
    answer = services.submit_answer(attempt, FIRST, "A", now=clock.now)
    assert answer.correct


def test_an_answer_after_deadline_plus_grace_is_refused_and_the_question_expires(clock):
    _, _, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    clock.advance(120 + 6)
    with pytest.raises(services.Refused, match="Time is up"):
        services.submit_answer(attempt, FIRST, "A", now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == QuestionState.Status.EXPIRED
    assert state.attempts_used == 0
    assert not Answer.objects.filter(state=state).exists()


def test_an_unshown_question_cannot_be_answered_in_timed_mode(clock):
    _, _, attempt = _start(clock=clock)
    with pytest.raises(services.Refused, match="Open the question"):
        services.submit_answer(attempt, FIRST, "A", now=clock.now)


def test_exam_mode_has_one_clock_for_the_whole_set_starting_with_the_attempt(clock):
    placement, _, attempt = _start("exam", clock=clock)
    assert (attempt.closes_at - attempt.started_at).total_seconds() == 900
    clock.advance(600)
    state = services.show_question(attempt, DEBUG, now=clock.now)
    assert state.deadline == attempt.closes_at  # not 3 minutes from now: the set's clock
    clock.advance(300 + 6)
    with pytest.raises(services.Refused):
        services.submit_answer(attempt, DEBUG, "A", now=clock.now)
    attempt.refresh_from_db()
    assert attempt.is_finished and attempt.finish_reason == Attempt.FinishReason.EXPIRED


# --- Attempts and credit ----------------------------------------------------------------------------------------


def test_two_wrong_answers_exhaust_a_question_and_a_third_is_refused(clock):
    _, _, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    assert _state(attempt, FIRST).status == QuestionState.Status.OPEN
    services.submit_answer(attempt, FIRST, "C", now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == QuestionState.Status.EXHAUSTED and state.points == 0
    with pytest.raises(services.Refused, match="finished"):
        services.submit_answer(attempt, FIRST, "A", now=clock.now)
    assert state.answers.count() == 2


def test_full_points_on_the_first_attempt_half_on_the_second(clock):
    _, _, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    services.show_question(attempt, SECOND, now=clock.now)
    services.submit_answer(attempt, SECOND, "A", now=clock.now)
    services.submit_answer(attempt, SECOND, "D", now=clock.now)
    assert _state(attempt, FIRST).points == 1.0
    assert _state(attempt, SECOND).points == 0.5
    attempt.refresh_from_db()
    assert attempt.score == 1.5


def test_a_hint_costs_the_penalty_of_the_credit_policy(clock):
    placement, _, attempt = _start(clock=clock)
    placement.credit_policy = {"attempt_multipliers": [1.0, 0.5], "hint_penalty": 0.25}
    placement.save()
    services.show_question(attempt, FIRST, now=clock.now)
    state = services.take_hint(attempt, FIRST, now=clock.now)
    assert state.hint_used
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    assert _state(attempt, FIRST).points == 0.75


def test_practice_mode_has_free_hints_unlimited_attempts_and_no_clock(clock):
    placement, _, attempt = _start("practice", clock=clock)
    state = services.show_question(attempt, FIRST, now=clock.now)
    assert state.deadline is None and attempt.closes_at is None
    services.take_hint(attempt, FIRST, now=clock.now)
    for wrong in ["B", "C", "D", "B", "C"]:
        services.submit_answer(attempt, FIRST, wrong, now=clock.now)
    clock.advance(86400)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == QuestionState.Status.CORRECT and state.attempts_used == 6
    assert state.points == 1.0  # the hint is free


def test_exam_mode_allows_one_attempt_and_no_hints(clock):
    _, _, attempt = _start("exam", clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    with pytest.raises(services.Refused, match="Hints are not available"):
        services.take_hint(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    assert _state(attempt, FIRST).status == QuestionState.Status.EXHAUSTED


def test_an_option_that_is_not_in_the_question_is_refused_and_nothing_is_stored(clock):
    _, _, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    with pytest.raises(services.InvalidInput, match="not one of this question's options"):
        services.submit_answer(attempt, FIRST, "E", now=clock.now)
    assert _state(attempt, FIRST).attempts_used == 0
    assert not Answer.objects.exists()


def test_a_challenge_outside_the_placement_is_not_found(clock):
    _, _, attempt = _start(slugs=[FIRST, SECOND], clock=clock)
    with pytest.raises(services.NotFound):
        services.show_question(attempt, DEBUG, now=clock.now)


# --- Finishing, badge, gradebook --------------------------------------------------------------------------------


def _answer_all(attempt: Attempt, clock, keys=None) -> None:
    for slug in MC:
        services.show_question(attempt, slug, now=clock.now)
        services.submit_answer(attempt, slug, (keys or KEYS)[slug], now=clock.now)


def test_every_challenge_correct_earns_the_badge_and_completes_the_attempt(clock):
    _, _, attempt = _start(slugs=MC, clock=clock)
    _answer_all(attempt, clock)
    attempt.refresh_from_db()
    assert attempt.is_finished and attempt.finish_reason == Attempt.FinishReason.COMPLETED
    assert attempt.badge == "ResNet Mastery Badge"
    assert attempt.score == attempt.max_score == 5


def test_one_wrong_challenge_means_no_badge(clock):
    _, _, attempt = _start(slugs=MC, clock=clock)
    keys = dict(KEYS, **{SECOND: "A"})
    for slug in MC:
        services.show_question(attempt, slug, now=clock.now)
        services.submit_answer(attempt, slug, keys[slug], now=clock.now)
    services.submit_answer(attempt, SECOND, "B", now=clock.now)
    attempt.refresh_from_db()
    assert attempt.is_finished and attempt.badge == ""


def test_practice_mode_has_no_badge_and_never_reaches_the_gradebook(clock, recorded_scores):
    _, _, attempt = _start("practice", slugs=MC, clock=clock)
    _answer_all(attempt, clock)
    attempt.refresh_from_db()
    assert attempt.is_finished and attempt.badge == ""
    assert recorded_scores == []


def test_each_score_change_and_the_finish_are_sent_to_the_gradebook(clock, recorded_scores):
    placement, user, attempt = _start(slugs=[FIRST, SECOND], clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    assert recorded_scores == []  # the score did not change
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    assert len(recorded_scores) == 1
    first = recorded_scores[0]
    assert first["resource_link"] == placement.resource_link and first["lti_user"] == user
    assert first["score_given"] == pytest.approx(0.5 / 2 * placement.points)
    assert first["score_maximum"] == placement.points
    assert (first["activity_progress"], first["grading_progress"]) == ("InProgress", "FullyGraded")
    assert first["submitted_at"] is None  # not handed in: the LMS gets no submission for it
    clock.advance(30)
    services.finish_attempt(attempt, now=clock.now)
    last = recorded_scores[-1]
    assert (last["activity_progress"], last["grading_progress"]) == ("Completed", "FullyGraded")
    assert last["score_given"] == pytest.approx(0.25 * placement.points)
    attempt.refresh_from_db()
    assert last["submitted_at"] == attempt.finished_at == clock.now


def test_finishing_early_scores_unanswered_questions_zero(clock):
    _, _, attempt = _start(slugs=MC, clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    attempt = services.finish_attempt(attempt, now=clock.now)
    assert attempt.finish_reason == Attempt.FinishReason.SUBMITTED and attempt.score == 1
    assert attempt.states.filter(status=QuestionState.Status.EXPIRED).count() == 4
    with pytest.raises(services.Refused, match="attempt is finished"):
        services.submit_answer(attempt, SECOND, "D", now=clock.now)


def test_a_finished_timed_attempt_cannot_be_restarted_but_practice_can(clock):
    placement, user, attempt = _start(slugs=[FIRST], clock=clock)
    services.finish_attempt(attempt, now=clock.now)
    with pytest.raises(services.Refused, match="already finished"):
        services.start_attempt(placement, user, now=clock.now)
    practice, learner, first = _start("practice", slugs=[FIRST], clock=clock)
    services.finish_attempt(first, now=clock.now)
    second = services.start_attempt(practice, learner, now=clock.now)
    assert second.number == 2 and not second.is_finished


def test_starting_twice_returns_the_same_open_attempt(clock):
    placement, user, attempt = _start(clock=clock)
    assert services.start_attempt(placement, user, now=clock.now).pk == attempt.pk


# --- The finaliser ----------------------------------------------------------------------------------------------


def test_the_finaliser_closes_an_abandoned_exam_and_sends_its_score(clock, recorded_scores):
    placement, user, attempt = _start("exam", slugs=MC, clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    recorded_scores.clear()
    assert services.finalise_expired_attempts(now=clock.advance(60)) == 0
    assert services.finalise_expired_attempts(now=clock.advance(900)) == 1
    attempt.refresh_from_db()
    assert attempt.is_finished and attempt.finish_reason == Attempt.FinishReason.EXPIRED
    assert attempt.finished_at == attempt.closes_at
    assert attempt.score == 1
    assert recorded_scores[-1]["activity_progress"] == "Completed"
    assert recorded_scores[-1]["score_given"] == pytest.approx(placement.points / 5)
    assert services.finalise_expired_attempts(now=clock.advance(60)) == 0  # once


def test_the_finaliser_expires_timed_questions_and_closes_attempts_left_idle(clock):
    _, _, attempt = _start(slugs=[FIRST, SECOND], clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.finalise_expired_attempts(now=clock.advance(130))
    assert _state(attempt, FIRST).status == QuestionState.Status.EXPIRED
    attempt.refresh_from_db()
    assert not attempt.is_finished  # the second question was never opened: wait for the idle limit
    assert services.finalise_expired_attempts(now=clock.advance(1800)) == 1
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.ABANDONED


def test_the_celery_task_runs_the_finaliser(clock):
    from quizzes.tasks import finalise_expired_attempts

    _, _, attempt = _start("exam", slugs=[FIRST], clock=clock)
    Attempt.objects.filter(pk=attempt.pk).update(closes_at=clock.now.replace(year=2000))
    assert finalise_expired_attempts.apply().get() == 1


# --- Accommodations ---------------------------------------------------------------------------------------------


def test_a_time_multiplier_extends_open_questions_deadlines(clock):
    placement, user, attempt = _start(clock=clock)
    state = services.show_question(attempt, FIRST, now=clock.now)
    clock.advance(100)
    services.grant_accommodation(placement, user, time_multiplier=1.5, now=clock.now)
    state.refresh_from_db()
    assert (state.deadline - state.first_shown_at).total_seconds() == 180
    clock.advance(70)  # 170 s after it was shown: past the normal limit, within the extended one
    assert services.submit_answer(attempt, FIRST, "A", now=clock.now).correct
    later = services.show_question(attempt, SECOND, now=clock.now)
    assert (later.deadline - later.first_shown_at).total_seconds() == 180


def test_a_time_multiplier_extends_the_exam_clock(clock):
    placement, user, attempt = _start("exam", clock=clock)
    services.grant_accommodation(placement, user, time_multiplier=2, now=clock.now)
    attempt.refresh_from_db()
    assert (attempt.closes_at - attempt.started_at).total_seconds() == 1800
    assert _state(attempt, FIRST).deadline == attempt.closes_at


def test_extra_attempts_apply_to_open_questions(clock):
    placement, user, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    services.grant_accommodation(placement, user, extra_attempts=1, now=clock.now)
    services.submit_answer(attempt, FIRST, "C", now=clock.now)
    assert _state(attempt, FIRST).status == QuestionState.Status.OPEN
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == QuestionState.Status.CORRECT and state.points == 0.5  # the last multiplier repeats


@pytest.mark.parametrize("multiplier,extra", [(0.5, 0), (11, 0), (1, -1), (1, 101), ("x", 0)])
def test_accommodations_are_bounded(multiplier, extra):
    placement = PlacementFactory()
    user = student_for(placement.resource_link)
    with pytest.raises(services.InvalidInput):
        services.grant_accommodation(placement, user, time_multiplier=multiplier, extra_attempts=extra)


# --- Modes are data ---------------------------------------------------------------------------------------------


def test_a_new_mode_in_the_modes_file_works_without_new_code(tmp_path, monkeypatch, clock):
    import yaml

    from quizzes import content

    data = yaml.safe_load(content.MODES_FILE.read_text())
    sprint = dict(data["modes"][1], slug="sprint", title="Sprint", attempts=1, hints="off", badge=False)
    sprint["credit_policy"] = {"attempt_multipliers": [1.0], "hint_penalty": 0.0}
    data["modes"].append(sprint)
    modes_file = tmp_path / "modes.yaml"
    modes_file.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(content, "MODES_FILE", modes_file)

    placement, user, attempt = _start("sprint", slugs=[FIRST, SECOND], clock=clock)
    assert placement.rules["title"] == "Sprint"
    state = services.show_question(attempt, FIRST, now=clock.now)
    assert (state.deadline - state.first_shown_at).total_seconds() == 120
    with pytest.raises(services.Refused, match="Hints are not available"):
        services.take_hint(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    assert _state(attempt, FIRST).status == QuestionState.Status.EXHAUSTED


def test_a_placement_keeps_its_rules_when_the_modes_file_changes(tmp_path, monkeypatch, clock):
    import yaml

    from quizzes import content

    placement, user, attempt = _start("timed", slugs=[FIRST], clock=clock)
    data = yaml.safe_load(content.MODES_FILE.read_text())
    data["modes"][1]["attempts"] = 1
    modes_file = tmp_path / "modes.yaml"
    modes_file.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(content, "MODES_FILE", modes_file)
    assert content.get_mode("timed")["attempts"] == 1
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    assert _state(attempt, FIRST).status == QuestionState.Status.OPEN  # still two attempts: the snapshot


def test_an_invalid_modes_file_is_refused_with_its_path(tmp_path, monkeypatch):
    from quizzes import content

    modes_file = tmp_path / "modes.yaml"
    modes_file.write_text("default: timed\nmodes:\n  - slug: timed\n    timer: sometimes\n")
    with pytest.raises(content.ContentError) as error:
        content.read_modes(modes_file)
    assert str(modes_file) in str(error.value) and "$.modes[0]" in str(error.value)
