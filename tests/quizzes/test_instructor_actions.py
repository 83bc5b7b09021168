"""Instructor actions on one student's work (quizzes.actions): override points with a comment, reopen a question or
an attempt, extend a whole-set clock, reopen what an accommodation granted too late would have saved; each atomic,
validated apart and audited."""

from __future__ import annotations

import pytest

from grading.models import CodeSubmission
from lti_tool.gradebook.models import ScoreUpdate
from quizzes import actions, services
from quizzes.models import Attempt, AuditEntry, QuestionState
from tests.quizzes.factories import PlacementFactory, instructor_for, student_for
from tests.quizzes.test_code_answers import _grade

pytestmark = pytest.mark.django_db

FIRST = "why-skip-connections"  # answer A, 120 s, 2 attempts, 1 point
SECOND = "skip-block-output-shape"  # answer D
BLOCK = "resnet-block-projection"  # code, 2 points
Action = AuditEntry.Action
Status = QuestionState.Status


def _start(mode: str = "timed", slugs: list[str] | None = None, clock=None):
    placement = PlacementFactory(mode=mode, slugs=slugs or [FIRST, SECOND])
    user = student_for(placement.resource_link, name="Ada Student")
    teacher = instructor_for(placement.resource_link, name="Grace Teacher")
    attempt = services.start_attempt(placement, user, now=clock.now if clock else None)
    return placement, user, teacher, attempt


def _state(attempt: Attempt, slug: str) -> QuestionState:
    return attempt.states.get(slug=slug)


def _time_out(attempt: Attempt, slug: str, clock) -> None:
    services.show_question(attempt, slug, now=clock.now)
    clock.advance(120 + 6)
    with pytest.raises(services.Refused, match="Time is up"):
        services.submit_answer(attempt, slug, "A", now=clock.now)


# --- Override ---------------------------------------------------------------------------------------------------


def test_an_override_sets_the_points_recomputes_the_total_and_sends_it_with_the_comment(clock, recorded_scores):
    placement, user, teacher, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)  # 1 point
    services.finish_attempt(attempt, now=clock.advance(5))
    recorded_scores.clear()

    override = actions.check_override("0.5", "  Right idea, but the reasoning was copied.  ", max_points=1.0)
    actions.do_override_points(attempt, SECOND, override, actor=teacher, now=clock.advance(60))

    state = _state(attempt, SECOND)
    assert state.points == 0.5 and state.override_points == 0.5
    assert state.override_comment == "Right idea, but the reasoning was copied."
    attempt.refresh_from_db()
    assert attempt.score == 1.5
    (call,) = recorded_scores
    assert call["score_given"] == pytest.approx(1.5 / 2 * placement.points)
    assert call["activity_progress"] == "Completed" and call["submitted_at"] == attempt.finished_at  # a regrade
    assert "Right idea, but the reasoning was copied." in call["comment"] and "1.5 of 2 points" in call["comment"]
    assert call["overwrite_lms_grade"] is True
    entry = AuditEntry.objects.get()
    assert entry.action == Action.OVERRIDE_POINTS and entry.actor == teacher and entry.actor_name == "Grace Teacher"
    assert entry.student == user and entry.attempt == attempt and entry.slug == SECOND
    assert entry.created_at == clock.now
    assert entry.before["points"] == 0 and entry.before["attempt_score"] == 1.0
    assert entry.after["points"] == 0.5 and entry.after["attempt_score"] == 1.5
    assert entry.note == "Right idea, but the reasoning was copied."


def test_an_override_survives_a_correct_answer_and_a_regrade_until_it_is_removed(clock):
    placement, user, teacher, attempt = _start(slugs=[FIRST, BLOCK], clock=clock)
    actions.do_override_points(attempt, FIRST, actions.check_override(0.25, "Agreed in class", 1), actor=teacher)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    assert _state(attempt, FIRST).points == 0.25 and _state(attempt, FIRST).status == Status.CORRECT

    services.show_question(attempt, BLOCK)
    actions.do_override_points(attempt, BLOCK, actions.check_override(2, "Full marks: grader bug", 2), actor=teacher)
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    _grade(answer.submission, 1.0)  # the grader's result arrives after the override: it stands
    assert _state(attempt, BLOCK).points == 2
    attempt.refresh_from_db()
    assert attempt.score == 2.25

    actions.do_remove_override(attempt, BLOCK, actor=teacher, note="Grader fixed")
    actions.do_remove_override(attempt, FIRST, actor=teacher)
    assert _state(attempt, BLOCK).points == pytest.approx(0.5)  # 1 of 4 checks x 2 points
    assert _state(attempt, FIRST).points == 1.0 and _state(attempt, FIRST).override_comment == ""
    attempt.refresh_from_db()
    assert attempt.score == 1.5
    actions_taken = list(AuditEntry.objects.order_by("pk").values_list("action", "slug"))
    assert actions_taken == [
        (Action.OVERRIDE_POINTS, FIRST), (Action.OVERRIDE_POINTS, BLOCK),
        (Action.REMOVE_OVERRIDE, BLOCK), (Action.REMOVE_OVERRIDE, FIRST),
    ]
    assert CodeSubmission.objects.count() == 1


@pytest.mark.parametrize(
    "points,comment",
    [("1.5", "too many"), ("-0.1", "negative"), ("nan", "not a number"), ("inf", "x"), ("one", "x"), ("1", ""),
     ("1", "   "), ("1", "x" * 1001), ("1", "bad\x00byte")],
)
def test_an_override_is_bounded_and_needs_a_comment(points, comment):
    with pytest.raises(services.InvalidInput):
        actions.check_override(points, comment, max_points=1.0)


def test_an_override_above_the_questions_points_is_refused_and_changes_nothing(clock):
    _, _, teacher, attempt = _start(clock=clock)
    with pytest.raises(services.InvalidInput, match="between 0 and 1"):
        actions.do_override_points(attempt, FIRST, actions.Override(3.0, "sneaky"), actor=teacher)
    assert _state(attempt, FIRST).override_points is None and not AuditEntry.objects.exists()


def test_removing_an_override_that_does_not_exist_is_refused(clock):
    _, _, teacher, attempt = _start(clock=clock)
    with pytest.raises(services.Refused):
        actions.do_remove_override(attempt, FIRST, actor=teacher)


# --- Reopen a question ------------------------------------------------------------------------------------------


def test_a_timed_out_question_reopens_with_its_full_time_and_takes_an_answer(clock):
    placement, _, teacher, attempt = _start(clock=clock)
    _time_out(attempt, FIRST, clock)
    assert _state(attempt, FIRST).status == Status.EXPIRED

    clock.advance(600)
    reopening = actions.check_reopening(minutes="", extra_attempts="0", note="Connection dropped")
    state = actions.do_reopen_question(attempt, FIRST, reopening, actor=teacher, now=clock.now)
    assert state.status == Status.OPEN
    assert (state.deadline - clock.now).total_seconds() == 120  # the question's full limit, from now
    clock.advance(100)
    assert services.submit_answer(attempt, FIRST, "A", now=clock.now).correct
    entry = AuditEntry.objects.get()
    assert entry.action == Action.REOPEN_QUESTION and entry.note == "Connection dropped"
    assert entry.before["status"] == "expired" and entry.after["status"] == "open"
    assert entry.after["deadline"] == state.deadline.isoformat()


def test_a_reopen_can_give_chosen_minutes_and_survives_a_later_accommodation(clock):
    placement, user, teacher, attempt = _start(clock=clock)
    _time_out(attempt, FIRST, clock)
    actions.do_reopen_question(attempt, FIRST, actions.check_reopening(minutes=5), actor=teacher, now=clock.now)
    assert (_state(attempt, FIRST).deadline - clock.now).total_seconds() == 300
    services.grant_accommodation(placement, user, time_multiplier=1.5, granted_by=teacher, now=clock.now)
    assert (_state(attempt, FIRST).deadline - clock.now).total_seconds() == 360  # +60 s: half the 120 s limit


def test_a_question_out_of_attempts_reopens_only_with_an_extra_attempt(clock):
    _, _, teacher, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "B", now=clock.now)
    services.submit_answer(attempt, FIRST, "C", now=clock.now)
    assert _state(attempt, FIRST).status == Status.EXHAUSTED
    with pytest.raises(services.InvalidInput, match="extra attempt"):
        actions.do_reopen_question(attempt, FIRST, actions.Reopening(), actor=teacher, now=clock.now)
    assert _state(attempt, FIRST).status == Status.EXHAUSTED and not AuditEntry.objects.exists()

    actions.do_reopen_question(attempt, FIRST, actions.Reopening(extra_attempts=1), actor=teacher, now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == Status.OPEN and state.extra_attempts == 1
    assert services.submit_answer(attempt, FIRST, "A", now=clock.now).correct
    assert _state(attempt, FIRST).points == 0.5  # third attempt: the last multiplier repeats
    with pytest.raises(services.Refused):
        actions.do_reopen_question(attempt, FIRST, actions.Reopening(extra_attempts=1), actor=teacher)


def test_a_question_of_a_finished_attempt_reopens_the_attempt_and_its_new_end_is_a_new_hand_in(
    clock, recorded_scores
):
    placement, _, teacher, attempt = _start(clock=clock)
    services.show_question(attempt, SECOND, now=clock.now)
    services.submit_answer(attempt, SECOND, "D", now=clock.now)
    _time_out(attempt, FIRST, clock)
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.COMPLETED
    first_end = attempt.finished_at
    recorded_scores.clear()

    actions.do_reopen_question(attempt, FIRST, actions.Reopening(), actor=teacher, now=clock.advance(3600))
    attempt.refresh_from_db()
    assert not attempt.is_finished and attempt.finish_reason == ""
    assert _state(attempt, SECOND).status == Status.CORRECT  # the others stay as they were
    assert recorded_scores == []  # nothing changes in the gradebook until the student hands in again
    services.submit_answer(attempt, FIRST, "A", now=clock.advance(30))
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.COMPLETED and attempt.finished_at > first_end
    assert attempt.score == 2
    assert recorded_scores[-1]["activity_progress"] == "Completed"
    assert recorded_scores[-1]["submitted_at"] == attempt.finished_at


def test_only_the_latest_attempt_is_reopened(clock):
    placement, user, teacher, attempt = _start("practice", clock=clock)
    services.finish_attempt(attempt, now=clock.now)
    services.start_attempt(placement, user, now=clock.now)
    with pytest.raises(services.Refused, match="latest attempt"):
        actions.do_reopen_attempt(attempt, actions.Reopening(), actor=teacher, now=clock.now)
    assert Attempt.objects.filter(finished_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    "minutes,extra,note",
    [("0", 0, ""), ("1441", 0, ""), ("1.5", 0, ""), ("x", 0, ""), ("", -1, ""), ("", 101, ""), ("", 0, "n" * 501)],
)
def test_a_reopening_is_bounded(minutes, extra, note):
    with pytest.raises(services.InvalidInput):
        actions.check_reopening(minutes, extra, note)


# --- Whole-set clocks and finished attempts ---------------------------------------------------------------------


def test_the_whole_set_clock_of_one_attempt_is_extended(clock):
    placement, user, teacher, attempt = _start("exam", clock=clock)
    closes = attempt.closes_at
    actions.do_extend_attempt(attempt, actions.check_extension(10, "Fire alarm"), actor=teacher, now=clock.now)
    attempt.refresh_from_db()
    assert (attempt.closes_at - closes).total_seconds() == 600
    assert _state(attempt, FIRST).deadline == attempt.closes_at
    services.grant_accommodation(placement, user, time_multiplier=2, granted_by=teacher, now=clock.now)
    attempt.refresh_from_db()
    assert (attempt.closes_at - attempt.started_at).total_seconds() == 900 * 2 + 600  # the extension is kept
    entry = AuditEntry.objects.filter(action=Action.EXTEND_ATTEMPT).get()
    assert entry.before["extra_time_s"] == 0 and entry.after["extra_time_s"] == 600 and entry.note == "Fire alarm"


def test_a_per_question_clock_or_a_finished_attempt_is_not_extended(clock):
    _, _, teacher, attempt = _start(clock=clock)
    with pytest.raises(services.Refused, match="clock per question"):
        actions.do_extend_attempt(attempt, actions.check_extension(10), actor=teacher, now=clock.now)
    _, _, teacher, exam = _start("exam", clock=clock)
    services.finish_attempt(exam, now=clock.now)
    with pytest.raises(services.Refused, match="reopen it"):
        actions.do_extend_attempt(exam, actions.check_extension(10), actor=teacher, now=clock.now)
    with pytest.raises(services.InvalidInput):
        actions.check_extension("")


def test_a_finished_exam_reopens_with_fresh_time_for_the_questions_that_ran_out(clock):
    placement, _, teacher, attempt = _start("exam", clock=clock)
    services.show_question(attempt, SECOND, now=clock.now)
    services.submit_answer(attempt, SECOND, "D", now=clock.now)
    clock.advance(900 + 10)
    attempt = services.refresh_attempt(attempt, now=clock.now)
    assert attempt.finish_reason == Attempt.FinishReason.EXPIRED

    actions.do_reopen_attempt(attempt, actions.check_reopening(minutes=15), actor=teacher, now=clock.now)
    attempt.refresh_from_db()
    assert not attempt.is_finished and (attempt.closes_at - clock.now).total_seconds() == 900
    assert _state(attempt, FIRST).status == Status.OPEN and _state(attempt, FIRST).deadline == attempt.closes_at
    assert _state(attempt, SECOND).status == Status.CORRECT
    services.show_question(attempt, FIRST, now=clock.advance(60))
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.COMPLETED and attempt.score == 2
    entry = AuditEntry.objects.get(action=Action.REOPEN_ATTEMPT)
    assert entry.before["finish_reason"] == "expired" and entry.after["open_questions"] == [FIRST]
    with pytest.raises(services.Refused, match="still open|No question"):
        actions.do_reopen_attempt(attempt, actions.Reopening(), actor=teacher, now=clock.now)


# --- An accommodation granted after the time ran out ------------------------------------------------------------


def test_double_time_granted_after_a_timeout_offers_and_reopens_the_question_with_the_time_it_adds(clock):
    placement, user, teacher, attempt = _start(clock=clock)
    services.show_question(attempt, SECOND, now=clock.now)
    services.submit_answer(attempt, SECOND, "D", now=clock.now)
    _time_out(attempt, FIRST, clock)
    attempt.refresh_from_db()
    assert attempt.is_finished
    assert actions.expired_before_accommodation(attempt, None) == []

    accommodation = services.grant_accommodation(placement, user, time_multiplier=2, granted_by=teacher,
                                                 now=clock.advance(300))
    assert _state(attempt, FIRST).status == Status.EXPIRED  # granting alone reopens nothing...
    (expiry,) = actions.expired_before_accommodation(attempt, accommodation)  # ...it is offered
    assert expiry.state.slug == FIRST and expiry.extra_s == 120

    actions.do_reopen_expired(placement, user, actor=teacher, now=clock.now)
    state = _state(attempt, FIRST)
    assert state.status == Status.OPEN and (state.deadline - clock.now).total_seconds() == 120
    assert actions.expired_before_accommodation(Attempt.objects.get(), accommodation) == []
    services.submit_answer(attempt, FIRST, "A", now=clock.advance(100))
    attempt.refresh_from_db()
    assert attempt.finish_reason == Attempt.FinishReason.COMPLETED and attempt.score == 2
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        Action.ACCOMMODATION, Action.REOPEN_QUESTION
    ]
    with pytest.raises(services.Refused):
        actions.do_reopen_expired(placement, user, actor=teacher, now=clock.now)


def test_an_exam_that_ran_out_before_extra_time_reopens_with_the_time_it_adds(clock):
    placement, user, teacher, attempt = _start("exam", clock=clock)
    attempt = services.refresh_attempt(attempt, now=clock.advance(900 + 10))
    accommodation = services.grant_accommodation(placement, user, time_multiplier=1.5, now=clock.now)
    (expiry,) = actions.expired_before_accommodation(attempt, accommodation)
    assert expiry.state is None and expiry.extra_s == 450
    actions.do_reopen_expired(placement, user, actor=teacher, now=clock.now)
    attempt.refresh_from_db()
    assert not attempt.is_finished and (attempt.closes_at - clock.now).total_seconds() == 450
    assert {s.status for s in attempt.states.all()} == {Status.OPEN}


# --- The audit trail of accommodations and settings --------------------------------------------------------------


def test_accommodations_and_settings_changes_are_audited(clock):
    placement = PlacementFactory()
    user = student_for(placement.resource_link)
    teacher = instructor_for(placement.resource_link)
    services.update_placement(placement, challenge_slugs=[FIRST], mode_slug="exam", points=10.0, actor=teacher)
    services.grant_accommodation(placement, user, time_multiplier=1.25, extra_attempts=2, granted_by=teacher,
                                 note="Letter from the office")
    settings_entry, accommodation_entry = AuditEntry.objects.order_by("pk")
    assert settings_entry.action == Action.SETTINGS and settings_entry.actor == teacher
    assert settings_entry.before["mode"] == "timed" and settings_entry.after["mode"] == "exam"
    assert settings_entry.after["challenges"] == [FIRST] and settings_entry.after["points"] == 10.0
    assert accommodation_entry.student == user and accommodation_entry.before["time_multiplier"] == 1.0
    assert accommodation_entry.after == {"time_multiplier": 1.25, "extra_attempts": 2, "note": "Letter from the office"}


def test_a_refused_action_leaves_no_audit_row_and_no_score(clock):
    _, _, teacher, attempt = _start(clock=clock)
    services.show_question(attempt, FIRST, now=clock.now)
    services.submit_answer(attempt, FIRST, "A", now=clock.now)
    before = ScoreUpdate.objects.count()
    with pytest.raises(services.Refused):
        actions.do_reopen_question(attempt, FIRST, actions.Reopening(minutes=5), actor=teacher, now=clock.now)
    assert not AuditEntry.objects.exists() and ScoreUpdate.objects.count() == before
    assert _state(attempt, FIRST).status == Status.CORRECT


# --- Concurrency ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_reopens_are_serialised_and_each_one_is_audited():
    from tests.quizzes.test_races import _race

    placement, user, teacher, attempt = _start()
    services.show_question(attempt, FIRST)
    services.submit_answer(attempt, FIRST, "B")
    services.submit_answer(attempt, FIRST, "C")  # out of attempts

    results = _race(
        6,
        lambda i: actions.do_reopen_question(
            Attempt.objects.get(pk=attempt.pk), FIRST, actions.Reopening(extra_attempts=1), actor=teacher
        ),
    )

    assert results == ["ok"] * 6
    assert _state(attempt, FIRST).extra_attempts == 6  # no reopen lost another's extra attempt
    allowed = sorted((e.before["attempts_allowed"], e.after["attempts_allowed"]) for e in AuditEntry.objects.all())
    assert allowed == [(n, n + 1) for n in range(2, 8)]  # each row saw the one before it
