"""Instructor actions on one student's work, as Zulip-style verbs: override a question's points, reopen a question or
a finished attempt, extend a whole-set clock, reopen what an accommodation granted too late would have saved.

Each `do_*` verb takes input its `check_*` validated (apart, before any lock), then acts inside one transaction under
the attempt's row lock (the locking order of services.py) and stores an audit row (quizzes.audit) with who, when,
what, before and after. A changed score reaches the LMS through the gradebook outbox like every other score
(services._rescore): an override of a finished attempt is a regrade of the same hand-in (Canvas: no new submission,
the comment as a submission comment); a reopened attempt sends its score again when it finishes, as a new hand-in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from quizzes import audit
from quizzes.models import Accommodation, Answer, Attempt, Placement, QuestionState
from quizzes.services.accommodations import MAX_EXTRA_ATTEMPTS
from quizzes.services.attempts import _lock_attempt, _lock_question, _settle, _states
from quizzes.services.errors import InvalidInput, Refused, _plain_text
from quizzes.services.rules import (
    _accommodation,
    _challenge,
    _extra_attempts,
    _question_deadline,
    _set_time_limit,
    _slide_idle_close,
    _time_multiplier,
    attempts_allowed,
    set_closes_at,
)
from quizzes.services.scoring import _rescore, earned_points

MAX_COMMENT_CHARS = 1000
MAX_NOTE_CHARS = 500
MAX_REOPEN_MINUTES = 24 * 60

Status = QuestionState.Status


# --- Validation (no database) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    points: float
    comment: str


@dataclass(frozen=True)
class Reopening:
    """How a question or attempt is reopened: `minutes` of fresh time from now (None: the full limit again) and
    `extra_attempts` on top of what the question allowed."""

    minutes: int | None = None
    extra_attempts: int = 0
    note: str = ""

    @property
    def fresh_s(self) -> float | None:
        return None if self.minutes is None else self.minutes * 60.0


def _note(value: Any, *, limit: int, what: str) -> str:
    text = _plain_text(value, limit=limit + 1, what=what)
    if len(text) > limit:
        raise InvalidInput(f"The {what} is longer than {limit} characters.")
    return text


def check_override(points: Any, comment: Any, max_points: float) -> Override:
    """Points between 0 and the question's points, and a comment (the student sees it with the points)."""
    try:
        value = float(points)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("The points must be a number.") from exc
    if not math.isfinite(value) or not 0 <= value <= max_points:
        raise InvalidInput(f"The points must be between 0 and {max_points:g} (this question's points).")
    text = _note(comment, limit=MAX_COMMENT_CHARS, what="comment")
    if not text:
        raise InvalidInput("Write a comment: the student sees it next to the new points.")
    return Override(round(value, 4), text)


def check_reopening(minutes: Any = None, extra_attempts: Any = 0, note: Any = "") -> Reopening:
    """Fresh minutes (1 to 24 h, or None for the full limit), extra attempts (0 to 100) and an optional note."""
    try:
        minutes = None if minutes in (None, "") else int(minutes)
        extra_attempts = int(extra_attempts or 0)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("The minutes and the extra attempts must be whole numbers.") from exc
    if minutes is not None and not 1 <= minutes <= MAX_REOPEN_MINUTES:
        raise InvalidInput(f"The fresh time must be between 1 and {MAX_REOPEN_MINUTES} minutes.")
    if not 0 <= extra_attempts <= MAX_EXTRA_ATTEMPTS:
        raise InvalidInput(f"Extra attempts must be between 0 and {MAX_EXTRA_ATTEMPTS}.")
    return Reopening(minutes, extra_attempts, _note(note, limit=MAX_NOTE_CHARS, what="note"))


def check_extension(minutes: Any, note: Any = "") -> Reopening:
    """Minutes added to a whole-set clock: 1 to 24 h."""
    reopening = check_reopening(minutes, 0, note)
    if reopening.minutes is None:
        raise InvalidInput("Give the number of minutes to add.")
    return reopening


# --- Helpers (call with the attempt locked) -----------------------------------------------------------------------


def _allowed(placement: Placement, state: QuestionState, accommodation: Accommodation | None) -> int | None:
    extra = _extra_attempts(accommodation) + state.extra_attempts
    return attempts_allowed(placement.rules, _challenge(placement, state.slug), extra)


def _snapshot(attempt: Attempt, state: QuestionState | None, accommodation: Accommodation | None) -> dict[str, Any]:
    """The fields the actions change, for the audit row."""
    snapshot: dict[str, Any] = {
        "attempt_score": attempt.score,
        "attempt_finished_at": audit.when(attempt.finished_at),
        "finish_reason": attempt.finish_reason,
        "closes_at": audit.when(attempt.closes_at),
    }
    if state is not None:
        snapshot.update(
            status=state.status,
            points=state.points,
            override_points=state.override_points,
            override_comment=state.override_comment,
            attempts_used=state.attempts_used,
            attempts_allowed=_allowed(attempt.placement, state, accommodation),
            deadline=audit.when(state.deadline),
        )
    return snapshot


def _is_latest(attempt: Attempt) -> bool:
    latest = (
        Attempt.objects.filter(placement_id=attempt.placement_id, lti_user_id=attempt.lti_user_id)
        .order_by("-number")
        .values_list("pk", flat=True)
        .first()
    )
    return latest == attempt.pk


def _reopen_attempt_row(attempt: Attempt, now: datetime) -> None:
    """A finished attempt runs again. Its idle clock counts from now, not from the student's last answer."""
    if not _is_latest(attempt):
        raise Refused("Only the student's latest attempt can be reopened.")
    attempt.finished_at = None
    attempt.finish_reason = ""
    attempt.last_activity_at = now


def _extend_set_clock(
    attempt: Attempt, states: list[QuestionState], until: datetime | None, multiplier: float
) -> None:
    """Whole-set clock: make it run at least `until` (the added seconds are kept on the attempt); every open
    question shares it."""
    placement = attempt.placement
    if until is not None:
        attempt.extra_time_s += max(0.0, (until - set_closes_at(placement, attempt, multiplier)).total_seconds())
    attempt.closes_at = set_closes_at(placement, attempt, multiplier)
    for state in states:
        if state.is_open:
            state.deadline = attempt.closes_at
            state.save(update_fields=["deadline"])


def _reopen_state(
    attempt: Attempt, state: QuestionState, fresh_s: float | None, multiplier: float, now: datetime
) -> None:
    """Open one question again. A started per-question clock runs `fresh_s` from now (None: its full limit); an
    unstarted one starts when the student opens it. Whole-set clocks are the attempt's (_extend_set_clock)."""
    placement = attempt.placement
    state.status = Status.OPEN
    state.finished_at = None
    if placement.rules.get("timer") == "per_question" and state.first_shown_at is not None:
        limit_s = _challenge(placement, state.slug)["time_limit_s"] * multiplier
        target = now + timedelta(seconds=limit_s if fresh_s is None else fresh_s)
        if state.deadline is not None:
            target = max(target, state.deadline)  # never shortens a clock still running
        state.extra_time_s = (target - (state.first_shown_at + timedelta(seconds=limit_s))).total_seconds()
        state.deadline = _question_deadline(placement, attempt, state, multiplier)
    state.save(update_fields=["status", "finished_at", "extra_time_s", "deadline", "extra_attempts"])


def _finish_reopening(attempt: Attempt, states: list[QuestionState], now: datetime) -> None:
    _slide_idle_close(attempt.placement, attempt, states, max(now, attempt.last_activity_at))
    attempt.save(
        update_fields=["finished_at", "finish_reason", "last_activity_at", "closes_at", "extra_time_s"]
    )


# --- Override ---------------------------------------------------------------------------------------------------


def points_earned(placement: Placement, state: QuestionState) -> float:
    """What the student's answers earned for a question (its points without an override)."""
    if state.kind == QuestionState.Kind.CODE:
        scored = [a.points for a in state.code_answers.all() if a.points is not None]
        return max(scored, default=0.0)
    correct = Answer.objects.filter(state=state, correct=True).first()
    return earned_points(placement, state, correct.attempt_number) if correct is not None else 0.0


def do_override_points(
    attempt: Attempt, slug: str, override: Override, *, actor: Any, now: datetime | None = None
) -> QuestionState:
    """Set a question's points by hand, with a comment for the student; the attempt's total is recomputed and sent
    to the gradebook (even over a grade changed by hand in the LMS: this is the instructor's latest word)."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug)
        _settle(attempt, states, now)
        if override.points > state.max_points:
            raise InvalidInput(f"The points must be between 0 and {state.max_points:g} (this question's points).")
        accommodation = _accommodation(attempt.placement, attempt.lti_user_id)
        before = _snapshot(attempt, state, accommodation)
        state.override_points = override.points
        state.override_comment = override.comment
        state.points = override.points
        state.save(update_fields=["override_points", "override_comment", "points"])
        _rescore(attempt, states, force=True, overwrite_lms_grade=True)
        audit.record(
            attempt.placement, audit.Action.OVERRIDE_POINTS, actor=actor, now=now, attempt=attempt, slug=slug,
            before=before, after=_snapshot(attempt, state, accommodation), note=override.comment,
        )
        return state


def do_remove_override(
    attempt: Attempt, slug: str, *, actor: Any, note: str = "", now: datetime | None = None
) -> QuestionState:
    """Remove an override: the question's points are again what the student's answers earned."""
    now = now or timezone.now()
    note = _note(note, limit=MAX_NOTE_CHARS, what="note")
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug)
        if state.override_points is None:
            raise Refused("This question's points are not overridden.")
        _settle(attempt, states, now)
        accommodation = _accommodation(attempt.placement, attempt.lti_user_id)
        before = _snapshot(attempt, state, accommodation)
        state.override_points = None
        state.override_comment = ""
        state.points = points_earned(attempt.placement, state)
        state.save(update_fields=["override_points", "override_comment", "points"])
        _rescore(attempt, states, force=True, overwrite_lms_grade=True)
        audit.record(
            attempt.placement, audit.Action.REMOVE_OVERRIDE, actor=actor, now=now, attempt=attempt, slug=slug,
            before=before, after=_snapshot(attempt, state, accommodation), note=note,
        )
        return state


# --- Reopen and extend ------------------------------------------------------------------------------------------


def do_reopen_question(
    attempt: Attempt, slug: str, reopening: Reopening, *, actor: Any, now: datetime | None = None
) -> QuestionState:
    """Open one question again for one student (timed out, out of attempts, or its attempt finished), with fresh
    time and/or extra attempts. A finished attempt is reopened with it; its other questions stay as they were."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug)
        _settle(attempt, states, now)
        if state.status == Status.CORRECT:
            raise Refused("This question was answered correctly: there is nothing to reopen (override its points).")
        placement = attempt.placement
        accommodation = _accommodation(placement, attempt.lti_user_id)
        multiplier = _time_multiplier(accommodation)
        before = _snapshot(attempt, state, accommodation)
        state.extra_attempts += reopening.extra_attempts
        allowed = _allowed(placement, state, accommodation)
        if allowed is not None and state.attempts_used >= allowed:
            raise InvalidInput(
                f"The student used all {allowed} attempts at this question: give at least one extra attempt."
            )
        if attempt.is_finished:
            _reopen_attempt_row(attempt, now)
        _reopen_state(attempt, state, reopening.fresh_s, multiplier, now)
        ran_out = attempt.closes_at is None or now >= attempt.closes_at
        if placement.rules.get("timer") == "whole_set" and (reopening.minutes or ran_out):
            fresh_s = reopening.fresh_s or _challenge(placement, slug)["time_limit_s"] * multiplier
            _extend_set_clock(attempt, states, now + timedelta(seconds=fresh_s), multiplier)
        _finish_reopening(attempt, states, now)
        audit.record(
            placement, audit.Action.REOPEN_QUESTION, actor=actor, now=now, attempt=attempt, slug=slug,
            before=before, after=_snapshot(attempt, state, accommodation), note=reopening.note,
        )
        return state


def do_reopen_attempt(
    attempt: Attempt, reopening: Reopening, *, actor: Any, now: datetime | None = None
) -> Attempt:
    """Reopen a finished attempt: every question that ran out of time opens again with fresh time (answered ones and
    ones out of attempts stay as they are)."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        states = _states(attempt)
        _settle(attempt, states, now)
        if not attempt.is_finished:
            raise Refused("This attempt is still open; reopen single questions or extend its clock instead.")
        expired = [s for s in states if s.status == Status.EXPIRED]
        if not expired:
            raise Refused(
                "No question of this attempt ran out of time: reopen single questions with extra attempts instead."
            )
        placement = attempt.placement
        accommodation = _accommodation(placement, attempt.lti_user_id)
        multiplier = _time_multiplier(accommodation)
        before = {**_snapshot(attempt, None, accommodation), "open_questions": []}
        _reopen_attempt_row(attempt, now)
        for state in expired:
            _reopen_state(attempt, state, reopening.fresh_s, multiplier, now)
        if placement.rules.get("timer") == "whole_set":
            fresh_s = reopening.fresh_s or _set_time_limit(placement) * multiplier
            _extend_set_clock(attempt, states, now + timedelta(seconds=fresh_s), multiplier)
        _finish_reopening(attempt, states, now)
        audit.record(
            placement, audit.Action.REOPEN_ATTEMPT, actor=actor, now=now, attempt=attempt, before=before,
            after={**_snapshot(attempt, None, accommodation), "open_questions": [s.slug for s in expired]},
            note=reopening.note,
        )
        return attempt


def do_extend_attempt(
    attempt: Attempt, reopening: Reopening, *, actor: Any, now: datetime | None = None
) -> Attempt:
    """Add minutes to the whole-set clock of one open attempt (exam modes)."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        placement = attempt.placement
        if placement.rules.get("timer") != "whole_set":
            raise Refused("This activity has a clock per question, not one for the whole set: reopen questions.")
        states = _states(attempt)
        _settle(attempt, states, now)
        if attempt.is_finished:
            raise Refused("This attempt is finished: reopen it instead, with the time it should get.")
        multiplier = _time_multiplier(_accommodation(placement, attempt.lti_user_id))
        before = {**_snapshot(attempt, None, None), "extra_time_s": attempt.extra_time_s}
        attempt.extra_time_s += reopening.fresh_s or 0.0
        _extend_set_clock(attempt, states, None, multiplier)
        attempt.save(update_fields=["extra_time_s", "closes_at"])
        audit.record(
            placement, audit.Action.EXTEND_ATTEMPT, actor=actor, now=now, attempt=attempt, before=before,
            after={**_snapshot(attempt, None, None), "extra_time_s": attempt.extra_time_s}, note=reopening.note,
        )
        return attempt


# --- What an accommodation granted too late would have saved -----------------------------------------------------


@dataclass
class Expiry:
    """Something that ran out of time but would not have under the student's accommodation: a question (per-question
    clocks) or the attempt (`state` None: the whole-set clock), and the seconds the accommodation adds to it."""

    attempt: Attempt
    state: QuestionState | None
    extra_s: float


def expired_before_accommodation(attempt: Attempt | None, accommodation: Accommodation | None) -> list[Expiry]:
    """What in the student's latest attempt ran out under less time than their accommodation now gives."""
    if attempt is None or accommodation is None:
        return []
    placement = attempt.placement
    multiplier = accommodation.time_multiplier
    timer = placement.rules.get("timer")
    if timer == "whole_set":
        if attempt.finish_reason != Attempt.FinishReason.EXPIRED or attempt.closes_at is None:
            return []
        had = (attempt.closes_at - attempt.started_at).total_seconds()
        extra = _set_time_limit(placement) * multiplier + attempt.extra_time_s - had
        return [Expiry(attempt, None, extra)] if extra >= 1 else []
    if timer != "per_question":
        return []
    expiries = []
    for state in attempt.states.all():
        ran_out = (
            state.status == Status.EXPIRED
            and state.first_shown_at is not None
            and state.deadline is not None
            and state.finished_at is not None
            and state.finished_at >= state.deadline
        )
        if not ran_out:
            continue
        had = (state.deadline - state.first_shown_at).total_seconds()
        extra = _challenge(placement, state.slug)["time_limit_s"] * multiplier + state.extra_time_s - had
        if extra >= 1:
            expiries.append(Expiry(attempt, state, extra))
    return expiries


def do_reopen_expired(
    placement: Placement, student: Any, *, actor: Any, now: datetime | None = None
) -> list[Expiry]:
    """Reopen what ran out of time before the student's accommodation was granted, each with the time the
    accommodation adds (so the student gets what they would have had)."""
    now = now or timezone.now()
    with transaction.atomic():
        latest = Attempt.objects.filter(placement=placement, lti_user=student).order_by("-number").first()
        if latest is None:
            raise Refused("This student has no attempt.")
        attempt = _lock_attempt(latest)
        states = _states(attempt)
        accommodation = _accommodation(attempt.placement, attempt.lti_user_id)
        expiries = expired_before_accommodation(attempt, accommodation)
        if not expiries:
            raise Refused("Nothing of this student's ran out of time before their accommodation.")
        multiplier = _time_multiplier(accommodation)
        note = f"Reopened for the accommodation (\u00d7{multiplier:g} time)."
        before = _snapshot(attempt, None, accommodation)
        if attempt.is_finished:
            _reopen_attempt_row(attempt, now)
        if expiries[0].state is None:  # the whole-set clock ran out: its expired questions share the new time
            reopened = [s for s in states if s.status == Status.EXPIRED]
            for state in reopened:
                _reopen_state(attempt, state, None, multiplier, now)
            _extend_set_clock(attempt, states, now + timedelta(seconds=expiries[0].extra_s), multiplier)
            audit.record(
                placement, audit.Action.REOPEN_ATTEMPT, actor=actor, now=now, attempt=attempt, before=before,
                after={**_snapshot(attempt, None, accommodation), "open_questions": [s.slug for s in reopened]},
                note=note,
            )
        for expiry in expiries:
            state = next((s for s in states if expiry.state is not None and s.pk == expiry.state.pk), None)
            if state is None:
                continue
            question_before = _snapshot(attempt, state, accommodation)
            _reopen_state(attempt, state, expiry.extra_s, multiplier, now)
            audit.record(
                placement, audit.Action.REOPEN_QUESTION, actor=actor, now=now, attempt=attempt, slug=state.slug,
                before=question_before, after=_snapshot(attempt, state, accommodation), note=note,
            )
        _finish_reopening(attempt, states, now)
        return expiries
