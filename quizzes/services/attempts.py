"""Attempts: start, show a question, answer, hint, code, finish, and the clock applied to them.

Locking order, everywhere: the `Attempt` row first (select_for_update), then its question states. Every change to a
question state happens under its attempt's lock, so two parallel requests for the same attempt are serialised and
can never both use the last attempt at a question.

Time: a question's deadline is stored when its clock starts (first shown, or the attempt's start for a whole-set
timer). Answers are accepted up to `deadline + grace_s` (the mode's rule) to absorb network delay; after that the
question is expired. Expiry is applied lazily by every verb (`_settle`) and periodically by
`finalise_expired_attempts` for attempts nobody looks at any more.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import metrics
from grading import services as grading
from quizzes.models import Answer, Attempt, CodeAnswer, Placement, QuestionState
from quizzes.services.errors import InvalidInput, NotFound, QuizError, Refused
from quizzes.services.rules import (
    _accommodation,
    _challenge,
    _extra_attempts,
    _grace,
    _question_deadline,
    _set_time_limit,
    _slide_idle_close,
    _time_multiplier,
    attempts_allowed,
)
from quizzes.services.scoring import _pending_state_ids, _rescore, earned_points

logger = logging.getLogger(__name__)


def start_attempt(placement: Placement, lti_user: Any, *, now: datetime | None = None) -> Attempt:
    """The student's open attempt, or a new one (a restart only where the mode allows it)."""
    now = now or timezone.now()
    with transaction.atomic():
        placement = Placement.objects.select_for_update().select_related("challenge_set").get(pk=placement.pk)
        attempts = list(Attempt.objects.filter(placement=placement, lti_user=lti_user).order_by("number"))
        open_attempt = next((a for a in attempts if a.finished_at is None), None)
        if open_attempt is not None:
            return open_attempt
        if attempts and not placement.rules.get("restartable"):
            raise Refused("You have already finished this challenge set.")
        accommodation = _accommodation(placement, lti_user.pk)
        attempt = Attempt(
            placement=placement,
            lti_user=lti_user,
            number=len(attempts) + 1,
            started_at=now,
            last_activity_at=now,
        )
        challenges = [_challenge(placement, slug) for slug in placement.challenge_slugs]
        attempt.max_score = float(sum(c["points"] for c in challenges))
        if placement.rules.get("timer") == "whole_set":
            attempt.closes_at = now + timedelta(seconds=_set_time_limit(placement) * _time_multiplier(accommodation))
        attempt.save()
        shuffle = bool(placement.rules.get("shuffle_options"))
        states = [
            QuestionState(
                attempt=attempt,
                slug=c["slug"],
                kind=c["kind"],
                position=index,
                max_points=float(c["points"]),
                deadline=attempt.closes_at,  # whole-set clock: every question shares it; otherwise None for now
                presentation=new_presentation(c, shuffle=shuffle),
            )
            for index, c in enumerate(challenges)
        ]
        QuestionState.objects.bulk_create(states)
        _slide_idle_close(placement, attempt, states, now)
        attempt.save(update_fields=["closes_at"])
        return attempt


def new_presentation(challenge: dict[str, Any], *, shuffle: bool) -> dict[str, Any]:
    """How one attempt shows a challenge, stored with its question state: a seed (a generated variant will draw from
    it too) and, for multiple choice, the options in display order, each with an opaque id the browser submits.

    Ids are random per attempt, so a form value says nothing of the content's key or position: five letters passed
    around a chat mean nothing in another student's attempt, whose order differs when the mode shuffles."""
    seed = secrets.randbits(63)
    if challenge.get("kind") != "choice":
        return {"seed": seed}
    keys = [option["key"] for option in challenge["options"]]
    if shuffle:
        random.Random(seed).shuffle(keys)
    ids: set[str] = set()
    while len(ids) < len(keys):
        ids.add(secrets.token_urlsafe(6))
    return {"seed": seed, "options": [[key, option_id] for key, option_id in zip(keys, ids, strict=True)]}


def option_key(state: QuestionState, option_id: str) -> str:
    """The content key of the option this attempt showed under `option_id`; InvalidInput for anything else."""
    for key, shown_id in state.presentation.get("options") or []:
        if shown_id == option_id:
            return str(key)
    raise InvalidInput("That is not one of this question's options; reload the page and choose again.")


def _lock_attempt(attempt: Attempt) -> Attempt:
    return (
        Attempt.objects.select_for_update(of=("self",))
        .select_related("placement__challenge_set", "placement__resource_link", "lti_user")
        .get(pk=attempt.pk)
    )


def _states(attempt: Attempt) -> list[QuestionState]:
    return list(attempt.states.order_by("position"))


def _state(states: list[QuestionState], slug: str) -> QuestionState:
    state = next((s for s in states if s.slug == slug), None)
    if state is None:
        raise NotFound("That challenge is not part of this activity.")
    return state


# A question answered the other way than its kind: what the student is told, by the kind the verb answers.
_WRONG_KIND = {
    QuestionState.Kind.CHOICE: "This challenge is answered with code, not with a choice.",
    QuestionState.Kind.CODE: "This question is answered with a choice, not with code.",
}


def _lock_question(
    attempt: Attempt, slug: str, kind: str | None = None
) -> tuple[Attempt, list[QuestionState], QuestionState]:
    """The attempt, locked; its question states; the one named `slug` (refused unless of `kind`, when given)."""
    attempt = _lock_attempt(attempt)
    states = _states(attempt)
    state = _state(states, slug)
    if kind is not None and state.kind != kind:
        raise InvalidInput(_WRONG_KIND[kind])
    return attempt, states, state


def _settle(attempt: Attempt, states: list[QuestionState], now: datetime) -> bool:
    """Apply the clock: expire questions past deadline + grace, close the attempt when it is over.

    Returns True when the attempt finished here. Call with the attempt locked.
    """
    if attempt.is_finished:
        return False
    placement = attempt.placement
    grace = _grace(placement)
    pending = _pending_state_ids(attempt)
    for state in states:
        if state.is_open and state.deadline and now > state.deadline + grace and state.pk not in pending:
            state.status = QuestionState.Status.EXPIRED
            state.finished_at = state.deadline
            state.save(update_fields=["status", "finished_at"])
    if attempt.closes_at and now > attempt.closes_at + grace:
        whole_set = placement.rules.get("timer") == "whole_set"
        reason = Attempt.FinishReason.EXPIRED if whole_set else Attempt.FinishReason.ABANDONED
        _finish(attempt, states, now, reason)
        return True
    if all(not s.is_open for s in states):
        _finish(attempt, states, now, Attempt.FinishReason.COMPLETED)
        return True
    return False


def _finish(attempt: Attempt, states: list[QuestionState], now: datetime, reason: str) -> None:
    pending = _pending_state_ids(attempt)
    for state in states:
        if state.is_open and state.pk not in pending:
            state.status = QuestionState.Status.EXPIRED
            state.finished_at = now
            state.save(update_fields=["status", "finished_at"])
    if reason == Attempt.FinishReason.EXPIRED and attempt.closes_at:
        attempt.finished_at = min(now, attempt.closes_at)
    elif reason == Attempt.FinishReason.ABANDONED:
        attempt.finished_at = min(now, attempt.last_activity_at)
    else:
        attempt.finished_at = now
    attempt.finish_reason = reason
    attempt.save(update_fields=["finished_at", "finish_reason"])
    _rescore(attempt, states, finished_now=True)


def _touch(attempt: Attempt, states: list[QuestionState], now: datetime) -> None:
    attempt.last_activity_at = now
    _slide_idle_close(attempt.placement, attempt, states, now)
    attempt.save(update_fields=["last_activity_at", "closes_at"])


def _require_open_question(attempt: Attempt, state: QuestionState) -> None:
    if attempt.is_finished:
        raise Refused("This attempt is finished; nothing more can be submitted.")
    if state.first_shown_at is None:
        raise Refused("Open the question before answering it.")
    if not state.is_open:
        raise Refused(f"This question is finished ({state.get_status_display().lower()}).")


def _time_up_message(state: QuestionState) -> str:
    return "Time is up for this question: the answer arrived after its deadline and was not accepted."


def show_question(attempt: Attempt, slug: str, *, now: datetime | None = None) -> QuestionState:
    """Show a question: on first show its clock starts on the server and its deadline is stored."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug)
        _settle(attempt, states, now)
        if attempt.is_finished or state.first_shown_at is not None:
            return state
        placement = attempt.placement
        state.first_shown_at = now
        multiplier = _time_multiplier(_accommodation(placement, attempt.lti_user_id))
        state.deadline = _question_deadline(placement, attempt, state, multiplier)
        state.save(update_fields=["first_shown_at", "deadline"])
        _touch(attempt, states, now)
        return state


def submit_answer(attempt: Attempt, slug: str, choice: str, *, now: datetime | None = None) -> Answer:
    """Answer a multiple-choice question. Refused after deadline + grace, when no attempt is left, or when finished.

    Atomic under the attempt's row lock: two parallel submissions can never both use the last attempt.
    """
    now = now or timezone.now()
    refusal: QuizError | None = None
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug, QuestionState.Kind.CHOICE)
        challenge = _challenge(attempt.placement, slug)
        keys = [option["key"] for option in challenge["options"]]
        if choice not in keys:
            raise InvalidInput(f"That is not one of this question's options ({', '.join(keys)}).")
        was_open = state.is_open
        _settle(attempt, states, now)
        if was_open and state.status == QuestionState.Status.EXPIRED:
            refusal = Refused(_time_up_message(state))
        elif attempt.is_finished and not was_open:
            refusal = Refused("This attempt is finished; nothing more can be submitted.")
        elif attempt.is_finished:
            refusal = Refused("Time is up: this attempt closed before the answer arrived; it was not accepted.")
        if refusal is None:
            _require_open_question(attempt, state)
            answer = _apply_choice(attempt, states, state, challenge, choice, now)
    if refusal is not None:
        metrics.ANSWERS.labels(outcome="refused").inc()
        raise refusal
    metrics.ANSWERS.labels(outcome="correct" if answer.correct else "wrong").inc()
    return answer


def submit_option(attempt: Attempt, slug: str, option_id: str, *, now: datetime | None = None) -> Answer:
    """Answer with what the browser sends: the opaque id this attempt gave an option (see `new_presentation`).

    The presentation never changes once the attempt started, so it is read before `submit_answer` takes the lock."""
    state = QuestionState.objects.filter(attempt_id=attempt.pk, slug=slug).first()
    if state is None:
        raise NotFound("That challenge is not part of this activity.")
    if state.kind != QuestionState.Kind.CHOICE:
        raise InvalidInput(_WRONG_KIND[QuestionState.Kind.CHOICE])
    return submit_answer(attempt, slug, option_key(state, option_id), now=now)


def _apply_choice(
    attempt: Attempt, states: list[QuestionState], state: QuestionState, challenge: dict, choice: str, now: datetime
) -> Answer:
    placement = attempt.placement
    extra = _extra_attempts(_accommodation(placement, attempt.lti_user_id)) + state.extra_attempts
    allowed = attempts_allowed(placement.rules, challenge, extra)
    if allowed is not None and state.attempts_used >= allowed:
        raise Refused("No attempts left for this question.")
    state.attempts_used += 1
    correct = choice == challenge["answer"]
    answer = Answer.objects.create(
        state=state, choice=choice, correct=correct, attempt_number=state.attempts_used, submitted_at=now
    )
    if correct:
        state.status = QuestionState.Status.CORRECT
        if state.override_points is None:  # an instructor's override stands until they remove it
            state.points = earned_points(placement, state, state.attempts_used)
        state.finished_at = now
    elif allowed is not None and state.attempts_used >= allowed:
        state.status = QuestionState.Status.EXHAUSTED
        state.finished_at = now
    state.save(update_fields=["attempts_used", "status", "points", "finished_at"])
    _touch(attempt, states, now)
    _rescore(attempt, states)
    _settle(attempt, states, now)  # finishes the attempt when this was the last open question
    return answer


def take_hint(attempt: Attempt, slug: str, *, now: datetime | None = None) -> QuestionState:
    """Reveal a question's hint (recorded: it may cost points under the credit policy)."""
    now = now or timezone.now()
    refusal: QuizError | None = None
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        placement = attempt.placement
        if placement.rules.get("hints") == "off":
            raise Refused("Hints are not available in this mode.")
        states = _states(attempt)
        state = _state(states, slug)
        if not _challenge(placement, slug).get("hint"):
            raise NotFound("This challenge has no hint.")
        if state.hint_used:
            return state
        was_open = state.is_open
        _settle(attempt, states, now)
        if was_open and not state.is_open:
            refusal = Refused(_time_up_message(state))
        else:
            _require_open_question(attempt, state)
            state.hint_used = True
            state.save(update_fields=["hint_used"])
            _touch(attempt, states, now)
    if refusal is not None:
        raise refusal
    return state


def submit_code(attempt: Attempt, slug: str, code: str, *, now: datetime | None = None) -> CodeAnswer:
    """Submit code for a code challenge: uses an attempt and queues grading (after commit, by the grading app)."""
    now = now or timezone.now()
    _grading_call(grading.check_code, code)
    refusal: QuizError | None = None
    with transaction.atomic():
        attempt, states, state = _lock_question(attempt, slug, QuestionState.Kind.CODE)
        placement = attempt.placement
        challenge = _challenge(placement, slug)
        was_open = state.is_open
        _settle(attempt, states, now)
        if was_open and not state.is_open:
            refusal = Refused(_time_up_message(state))
        elif attempt.is_finished:
            refusal = Refused("This attempt is finished; nothing more can be submitted.")
        else:
            _require_open_question(attempt, state)
            extra = _extra_attempts(_accommodation(placement, attempt.lti_user_id)) + state.extra_attempts
            allowed = attempts_allowed(placement.rules, challenge, extra)
            if allowed is not None and state.attempts_used >= allowed:
                raise Refused("No attempts left for this challenge.")
            if state.pk in _pending_state_ids(attempt):
                raise Refused("Your previous submission is still being graded; wait for its result.")
            submission = _grading_call(
                grading.submit_code,
                challenge_slug=slug, code=code, challenge_version=placement.challenge_set.version,
                lti_user=attempt.lti_user,
            )
            state.attempts_used += 1
            state.save(update_fields=["attempts_used"])
            code_answer = CodeAnswer.objects.create(
                state=state, submission=submission, attempt_number=state.attempts_used, submitted_at=now
            )
            _touch(attempt, states, now)
    if refusal is not None:
        raise refusal
    return code_answer


def _grading_call(verb: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A grading verb whose refusal (ValidationError) is the student's input error (a 4xx with its message)."""
    try:
        return verb(*args, **kwargs)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from exc


def score_code_submission(sender: Any, submission: Any, **kwargs: Any) -> None:
    """Receiver of grading.signals.submission_graded: score the code question (partial credit) in that transaction."""
    code_answer = CodeAnswer.objects.filter(submission_id=submission.pk).select_related("state").first()
    if code_answer is None:
        return  # not a quiz answer (e.g. `grade_file`)
    now = timezone.now()
    with transaction.atomic():
        attempt = _lock_attempt(code_answer.state.attempt)
        states = _states(attempt)
        state = next(s for s in states if s.pk == code_answer.state_id)
        code_answer = CodeAnswer.objects.select_for_update().get(pk=code_answer.pk)
        if code_answer.points is not None:
            return  # already scored (the signal is sent once; this guards a replay)
        placement = attempt.placement
        fraction = (submission.score or 0.0) / submission.max_score if submission.max_score else 0.0
        code_answer.points = earned_points(placement, state, code_answer.attempt_number, fraction)
        code_answer.save(update_fields=["points"])
        if state.override_points is None:  # an instructor's override survives regrades until they remove it
            state.points = max(state.points, code_answer.points)
        if state.is_open:
            extra = _extra_attempts(_accommodation(placement, attempt.lti_user_id)) + state.extra_attempts
            allowed = attempts_allowed(placement.rules, _challenge(placement, state.slug), extra)
            grace = _grace(placement)
            if fraction >= 1.0 - 1e-9:
                state.status = QuestionState.Status.CORRECT
            elif allowed is not None and state.attempts_used >= allowed:
                state.status = QuestionState.Status.EXHAUSTED
            elif attempt.is_finished or (state.deadline and now > state.deadline + grace):
                state.status = QuestionState.Status.EXPIRED
            if not state.is_open:
                state.finished_at = now
        state.save(update_fields=["points", "status", "finished_at"])
        _rescore(attempt, states, force=True)
        _settle(attempt, states, now)


def finish_attempt(attempt: Attempt, *, now: datetime | None = None) -> Attempt:
    """The student ends their attempt: unanswered questions score nothing; the score goes to the gradebook."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        states = _states(attempt)
        if _settle(attempt, states, now) or attempt.is_finished:
            return attempt
        _finish(attempt, states, now, Attempt.FinishReason.SUBMITTED)
        return attempt


def finalise_expired_attempts(*, now: datetime | None = None, limit: int = 500) -> int:
    """Settle attempts whose clocks ran out although nobody came back (abandoned): score and grade them.

    Returns the number of attempts finished. Safe to run concurrently (locked rows are skipped).
    """
    now = now or timezone.now()
    from django.db.models import Q

    candidates = (
        Attempt.objects.filter(finished_at__isnull=True)
        .filter(Q(closes_at__lt=now) | Q(states__status=QuestionState.Status.OPEN, states__deadline__lt=now))
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    finished = 0
    for pk in list(candidates):
        with transaction.atomic():
            attempt = (
                Attempt.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("placement__challenge_set", "placement__resource_link", "lti_user")
                .filter(pk=pk, finished_at__isnull=True)
                .first()
            )
            if attempt is None:
                continue
            states = _states(attempt)
            if _settle(attempt, states, now):
                finished += 1
    if finished:
        logger.info("finalised expired attempts", extra={"count": finished})
    return finished


def refresh_attempt(attempt: Attempt, *, now: datetime | None = None) -> Attempt:
    """Apply the clock to an attempt (expire questions, close it when its time is up) and return it fresh."""
    now = now or timezone.now()
    if attempt.is_finished:
        return attempt
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        _settle(attempt, _states(attempt), now)
        return attempt
