"""An attempt's score and badge, and the gradebook.

Gradebook: in graded modes every score change calls `lti_tool.gradebook.services.record_score` inside the same
transaction (FullyGraded with the current score, scaled to the placement's points; InProgress while the attempt
runs, Completed with submitted_at = when it finished once it is over). While a code answer is still being graded
nothing is sent; the score goes out when the grading result arrives, so a pending state never replaces a grade the
LMS already has.
"""

from __future__ import annotations

from typing import Any

from quizzes.models import Attempt, CodeAnswer, Placement, QuestionState


def credit_multiplier(credit_policy: dict[str, Any], attempt_number: int) -> float:
    """The share of points a correct answer earns on attempt `attempt_number` (1-based; the last share repeats)."""
    multipliers = credit_policy.get("attempt_multipliers") or [1.0]
    return float(multipliers[min(attempt_number, len(multipliers)) - 1])


def earned_points(
    placement: Placement, state: QuestionState, attempt_number: int, fraction: float = 1.0
) -> float:
    """Points for an answer worth `fraction` of the question, on the given attempt, after the hint penalty."""
    fraction = min(max(fraction, 0.0), 1.0)
    points = state.max_points * fraction * credit_multiplier(placement.credit_policy, attempt_number)
    if state.hint_used and placement.rules.get("hints") == "penalised":
        points -= state.max_points * float(placement.credit_policy.get("hint_penalty", 0.0))
    return round(max(points, 0.0), 4)


def _pending_state_ids(attempt: Attempt) -> set[int]:
    return set(
        CodeAnswer.objects.filter(state__attempt=attempt, points__isnull=True).values_list("state_id", flat=True)
    )


def _rescore(
    attempt: Attempt,
    states: list[QuestionState],
    *,
    finished_now: bool = False,
    force: bool = False,
    overwrite_lms_grade: bool = False,
) -> None:
    """Recompute the attempt's score and badge; in graded modes send a changed score to the gradebook.

    `overwrite_lms_grade`: an instructor's own change in the tool (an override) is their latest word, so it goes
    even over a grade changed by hand in the LMS."""
    placement = attempt.placement
    old_score, old_badge = attempt.score, attempt.badge
    attempt.score = round(sum(s.points for s in states), 4)
    attempt.max_score = float(sum(s.max_points for s in states))
    all_correct = bool(states) and all(s.status == QuestionState.Status.CORRECT for s in states)
    attempt.badge = placement.challenge_set.badge_name if placement.rules.get("badge") and all_correct else ""
    attempt.save(update_fields=["score", "max_score", "badge"])
    if not placement.is_graded:
        return  # practice-like modes never reach the gradebook
    if not (finished_now or force or attempt.score != old_score or attempt.badge != old_badge):
        return
    if _pending_state_ids(attempt):
        return  # sent once the code answer's grade arrives; never wipe an existing grade with "Pending"
    _record_gradebook(attempt, states, overwrite_lms_grade=overwrite_lms_grade)


def gradebook_comment(attempt: Attempt, states: list[QuestionState]) -> str:
    """The AGS `comment` (Canvas: a submission comment; Moodle: the grade's feedback): the total, the badge and the
    instructor's comment on every question whose points they overrode."""
    comment = f"{attempt.score:g} of {attempt.max_score:g} points"
    if attempt.badge:
        comment += f"; {attempt.badge}"
    placement = attempt.placement
    for state in states:
        if state.override_points is not None and state.override_comment:
            title = (placement.challenge_set.challenge(state.slug) or {}).get("title", state.slug)
            comment += f"\n{title} ({state.points:g} of {state.max_points:g}): {state.override_comment}"
    return comment


def _record_gradebook(
    attempt: Attempt, states: list[QuestionState], *, overwrite_lms_grade: bool = False
) -> None:
    from lti_tool.gradebook import services as gradebook

    placement = attempt.placement
    share = attempt.score / attempt.max_score if attempt.max_score else 0.0
    comment = gradebook_comment(attempt, states)
    # submitted_at: when the student (or the clock) ended the attempt, None while it runs. The gradebook decides per
    # LMS what a score mid-attempt becomes (Canvas: progress only, no grade and no submission).
    gradebook.record_score(
        resource_link=placement.resource_link,
        lti_user=attempt.lti_user,
        score_given=round(share * placement.points, 4),
        score_maximum=placement.points,
        activity_progress="Completed" if attempt.is_finished else "InProgress",
        grading_progress="FullyGraded",
        comment=comment,
        submitted_at=attempt.finished_at,
        overwrite_lms_grade=overwrite_lms_grade,
    )
