"""Domain verbs of the challenge set: validate, then act, inside transaction.atomic.

Locking order, everywhere: the `Attempt` row first (select_for_update), then its question states. Every change to a
question state happens under its attempt's lock, so two parallel requests for the same attempt are serialised and
can never both use the last attempt at a question.

Time: a question's deadline is stored when its clock starts (first shown, or the attempt's start for a whole-set
timer). Answers are accepted up to `deadline + grace_s` (the mode's rule) to absorb network delay; after that the
question is expired. Expiry is applied lazily by every verb (`_settle`) and periodically by
`finalise_expired_attempts` for attempts nobody looks at any more.

Gradebook: in graded modes every score change calls `lti_tool.gradebook.services.record_score` inside the same
transaction (FullyGraded with the current score, scaled to the placement's points; InProgress while the attempt
runs, Completed with submitted_at = when it finished once it is over). While a code answer is still being graded
nothing is sent; the score goes out when the grading result arrives, so a pending state never replaces a grade the
LMS already has.
"""

from __future__ import annotations

import logging
import random
import secrets
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import metrics
from grading import services as grading
from quizzes import audit, content
from quizzes.models import (
    Accommodation,
    Answer,
    Attempt,
    ChallengeSet,
    CodeAnswer,
    Placement,
    PlacementDraft,
    QuestionState,
)

logger = logging.getLogger(__name__)

MAX_TIME_MULTIPLIER = 10.0
MAX_EXTRA_ATTEMPTS = 100
MAX_PLACEMENT_POINTS = 10_000.0
MAX_SET_TIME_LIMIT_S = 24 * 3600
UNGRADABLE_LINK_MESSAGE = (
    "The LMS keeps no gradebook column for this link (in Canvas: it was opened from the course navigation menu or "
    "another place that is not an assignment), so it can only run ungraded. To grade it, add the tool as an "
    "assignment (Canvas: Assignments, + Assignment, Submission Type External Tool)."
)


# --- Errors: each carries the HTTP status a view answers with and a message for people --------------------------


class QuizError(Exception):
    """A refused request. `status` is the HTTP status a view should answer with; str(error) is the message."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(QuizError):
    status = 400


class NotAllowed(QuizError):
    status = 403


class NotFound(QuizError):
    status = 404


class Refused(QuizError):
    """The request is well-formed but the rules refuse it now (time up, no attempts left, finished...)."""

    status = 409


# --- Rules ------------------------------------------------------------------------------------------------------


def attempts_allowed(rules: dict[str, Any], challenge: dict[str, Any], extra: int = 0) -> int | None:
    """How many attempts a challenge allows under a mode's rules (None: unlimited)."""
    limit = rules.get("attempts")
    if limit is None:
        return None
    base = int(challenge["attempts"]) if limit == "content" else int(limit)
    return base + extra


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


def _grace(placement: Placement) -> timedelta:
    return timedelta(seconds=float(placement.rules.get("grace_s", 5)))


def _accommodation(placement: Placement, lti_user_id: int) -> Accommodation | None:
    return Accommodation.objects.filter(placement=placement, lti_user_id=lti_user_id).first()


def _time_multiplier(accommodation: Accommodation | None) -> float:
    return accommodation.time_multiplier if accommodation else 1.0


def _extra_attempts(accommodation: Accommodation | None) -> int:
    return accommodation.extra_attempts if accommodation else 0


def _challenge(placement: Placement, slug: str) -> dict[str, Any]:
    challenge = placement.challenge_set.challenge(slug)
    if challenge is None:  # a placement only lists slugs of its pinned version; this is a data error
        raise NotFound(f"There is no challenge {slug!r} in this set.")
    return challenge


def _set_time_limit(placement: Placement) -> float:
    """Seconds on the whole-set clock: the rule, or the selected challenges' limits added up."""
    limit = placement.rules.get("set_time_limit_s")
    if limit:
        return float(limit)
    return float(sum(_challenge(placement, slug)["time_limit_s"] for slug in placement.challenge_slugs))


def _question_deadline(
    placement: Placement, attempt: Attempt, state: QuestionState, multiplier: float
) -> datetime | None:
    timer = placement.rules.get("timer")
    if timer == "per_question" and state.first_shown_at is not None:
        limit = _challenge(placement, state.slug)["time_limit_s"]
        return state.first_shown_at + timedelta(seconds=limit * multiplier + state.extra_time_s)
    if timer == "whole_set":
        return set_closes_at(placement, attempt, multiplier)
    return None


def set_closes_at(placement: Placement, attempt: Attempt, multiplier: float) -> datetime:
    """When a whole-set clock ends: the set's limit times the accommodation, plus time an instructor added."""
    return attempt.started_at + timedelta(seconds=_set_time_limit(placement) * multiplier + attempt.extra_time_s)


def _slide_idle_close(placement: Placement, attempt: Attempt, states: list[QuestionState], now: datetime) -> None:
    """Per-question timers: the attempt closes after `abandon_after_s` without activity or a running clock."""
    if placement.rules.get("timer") == "whole_set":
        return
    idle = placement.rules.get("abandon_after_s")
    if not idle:
        attempt.closes_at = None
        return
    running = [s.deadline for s in states if s.is_open and s.deadline is not None]
    attempt.closes_at = max([now, *running]) + timedelta(seconds=idle)


# --- Placements -------------------------------------------------------------------------------------------------


def default_placement_config(challenge_set: ChallengeSet | None = None) -> dict[str, Any]:
    """The configuration of a link nobody configured: the whole current set in the default (timed) mode."""
    challenge_set = challenge_set or content.current_set()
    rules = content.get_mode()
    return {
        "challenge_set": challenge_set,
        "title": challenge_set.title,
        "challenge_slugs": [c["slug"] for c in challenge_set.challenges],
        "mode_slug": rules["slug"],
        "rules": rules,
        "points": float(sum(c["points"] for c in challenge_set.challenges)),
        "credit_policy": dict(rules["credit_policy"]),
    }


def _plain_text(value: Any, *, limit: int, what: str) -> str:
    """A person's free text, stripped and cut to `limit`; a NUL character (which no database text can hold) is
    refused."""
    text = str(value or "")
    if "\x00" in text:
        raise InvalidInput(f"The {what} contains a NUL character.")
    return text.strip()[:limit]


def build_placement_config(
    *,
    challenge_slugs: list[str],
    mode_slug: str,
    points: float | None = None,
    title: str = "",
    set_time_limit_s: int | None = None,
    shuffle_options: bool | None = None,
    challenge_set: ChallengeSet | None = None,
) -> dict[str, Any]:
    """Validate an instructor's choices (deep-linking form or settings) into a placement configuration.

    `shuffle_options` None keeps the mode's rule; True or False overrides it for this placement."""
    challenge_set = challenge_set or content.current_set()
    known = [c["slug"] for c in challenge_set.challenges]
    if not challenge_slugs:
        raise InvalidInput("Choose at least one challenge.")
    unknown = [slug for slug in challenge_slugs if slug not in known]
    if unknown:
        raise InvalidInput(f"Unknown challenges: {', '.join(unknown[:5])}.")
    if len(set(challenge_slugs)) != len(challenge_slugs):
        raise InvalidInput("A challenge was chosen twice.")
    modes = content.get_modes()
    if mode_slug not in modes:
        raise InvalidInput(f"Unknown mode {mode_slug[:50]!r}; choose one of {', '.join(modes)}.")
    rules = dict(modes[mode_slug])
    if set_time_limit_s is not None:
        if rules["timer"] != "whole_set":
            raise InvalidInput("A time limit for the whole set only applies to modes with one timer for the set.")
        if not 60 <= set_time_limit_s <= MAX_SET_TIME_LIMIT_S:
            raise InvalidInput("The time limit must be between 1 minute and 24 hours.")
        rules["set_time_limit_s"] = int(set_time_limit_s)
    rules["shuffle_options"] = bool(rules.get("shuffle_options")) if shuffle_options is None else bool(shuffle_options)
    ordered = [slug for slug in known if slug in challenge_slugs]  # keep the set's order
    total = float(sum(challenge_set.challenge(slug)["points"] for slug in ordered))
    if points is None:
        points = total
    if not 0 < points <= MAX_PLACEMENT_POINTS:
        raise InvalidInput(f"Points must be more than 0 and at most {MAX_PLACEMENT_POINTS:g}.")
    title = _plain_text(title, limit=200, what="title")
    return {
        "challenge_set": challenge_set,
        "title": title or challenge_set.title[:200],
        "challenge_slugs": ordered,
        "mode_slug": mode_slug,
        "rules": rules,
        "points": float(points),
        "credit_policy": dict(rules["credit_policy"]),
    }


def create_placement_draft(*, registration: Any, context: Any, created_by: Any, **choices: Any) -> PlacementDraft:
    """Store a deep-linking configuration; its uuid travels to the LMS as the custom parameter `placement`."""
    config = build_placement_config(**choices)
    with transaction.atomic():
        return PlacementDraft.objects.create(
            registration=registration, context=context, created_by=created_by, **config
        )


def resolve_placement(resource_link: Any, launch: Any) -> Placement:
    """The placement behind a resource link, created on its first launch.

    A link carrying custom {"placement": <uuid of a draft made by this platform's deep linking>} gets that
    configuration; any other link gets the whole current ResNet set in the default (timed) mode.
    """
    existing = Placement.objects.select_related("challenge_set").filter(resource_link=resource_link).first()
    if existing is not None:
        return _as_practice_if_ungradable(existing, resource_link)
    from lti_tool.models import ResourceLink

    with transaction.atomic():
        link = ResourceLink.objects.select_for_update().select_related("context__deployment").get(pk=resource_link.pk)
        existing = Placement.objects.filter(resource_link=link).first()
        if existing is not None:
            return existing
        custom = {**(link.custom or {}), **(getattr(launch, "custom", None) or {})}
        draft = _find_draft(custom.get("placement"), link.context.deployment.registration_id)
        if draft is not None:
            config = {
                "challenge_set": draft.challenge_set,
                "title": draft.title,
                "challenge_slugs": list(draft.challenge_slugs),
                "mode_slug": draft.mode_slug,
                "rules": dict(draft.rules),
                "points": draft.points,
                "credit_policy": dict(draft.credit_policy),
            }
        else:
            config = default_placement_config()
            config["title"] = link.title or config["title"]
        if not link.can_be_graded:
            config.update(_ungraded_rules())
        return Placement.objects.create(resource_link=link, draft=draft, **config)


def _ungraded_rules() -> dict[str, Any]:
    """The rules of the first ungraded mode in modes.yaml (practice): a link whose grades cannot reach the LMS
    never lets a student spend timed, limited attempts for a grade that goes nowhere."""
    rules = next((dict(m) for m in content.get_modes().values() if not m.get("graded")), None)
    rules = rules or {**content.get_mode(), "graded": False}  # a modes.yaml without an ungraded mode
    return {"mode_slug": rules["slug"], "rules": rules, "credit_policy": dict(rules["credit_policy"])}


def _as_practice_if_ungradable(placement: Placement, link: Any) -> Placement:
    """A graded placement made before its link was known to be ungradable becomes practice while nobody started."""
    if not placement.is_graded or link.can_be_graded or placement.attempts.exists():
        return placement
    with transaction.atomic():
        placement = Placement.objects.select_for_update().select_related("challenge_set").get(pk=placement.pk)
        if placement.is_graded and not placement.attempts.exists():
            for field, value in _ungraded_rules().items():
                setattr(placement, field, value)
            placement.save()
    return placement


def _find_draft(value: Any, registration_id: int) -> PlacementDraft | None:
    if not value:
        return None
    try:
        draft_uuid = uuid_module.UUID(str(value))
    except ValueError:
        logger.warning("ignored a malformed placement custom parameter")
        return None
    draft = PlacementDraft.objects.filter(uuid=draft_uuid, registration_id=registration_id).first()
    if draft is None:
        logger.warning("placement draft not found for this platform", extra={"placement": str(draft_uuid)})
    return draft


def _settings_snapshot(placement: Placement) -> dict[str, Any]:
    return {
        "title": placement.title,
        "mode": placement.mode_slug,
        "challenges": list(placement.challenge_slugs),
        "points": placement.points,
        "set_time_limit_s": placement.rules.get("set_time_limit_s"),
        "shuffle_options": bool(placement.rules.get("shuffle_options")),
    }


def update_placement(
    placement: Placement, *, actor: Any = None, now: datetime | None = None, **choices: Any
) -> Placement:
    """Change a placement's challenges, mode or points; refused once anyone has started an attempt. Audited."""
    with transaction.atomic():
        placement = Placement.objects.select_for_update().get(pk=placement.pk)
        if placement.attempts.exists():
            raise Refused("Students have already started this activity; its settings can no longer change.")
        choices.setdefault("challenge_set", content.current_set(placement.challenge_set.slug))
        config = build_placement_config(**choices)
        if config["rules"].get("graded") and not placement.resource_link.can_be_graded:
            raise InvalidInput(UNGRADABLE_LINK_MESSAGE)
        before = _settings_snapshot(placement)
        for field, value in config.items():
            setattr(placement, field, value)
        placement.save()
        audit.record(
            placement, audit.Action.SETTINGS, actor=actor, now=now or timezone.now(),
            before=before, after=_settings_snapshot(placement),
        )
        return placement


# --- Attempts ---------------------------------------------------------------------------------------------------


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


def _pending_state_ids(attempt: Attempt) -> set[int]:
    return set(
        CodeAnswer.objects.filter(state__attempt=attempt, points__isnull=True).values_list("state_id", flat=True)
    )


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
        attempt = _lock_attempt(attempt)
        states = _states(attempt)
        state = _state(states, slug)
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
        attempt = _lock_attempt(attempt)
        states = _states(attempt)
        state = _state(states, slug)
        if state.kind != QuestionState.Kind.CHOICE:
            raise InvalidInput("This challenge is answered with code, not with a choice.")
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
        raise InvalidInput("This challenge is answered with code, not with a choice.")
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
        attempt = _lock_attempt(attempt)
        states = _states(attempt)
        state = _state(states, slug)
        if state.kind != QuestionState.Kind.CODE:
            raise InvalidInput("This question is answered with a choice, not with code.")
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


# --- Accommodations ---------------------------------------------------------------------------------------------


def grant_accommodation(
    placement: Placement,
    lti_user: Any,
    *,
    time_multiplier: float = 1.0,
    extra_attempts: int = 0,
    granted_by: Any = None,
    note: str = "",
    now: datetime | None = None,
) -> Accommodation:
    """Give a student more time (multiplier of every limit) and/or extra attempts per question.

    Applies to questions still open: their deadlines are recomputed from when their clocks started.
    """
    now = now or timezone.now()
    try:
        time_multiplier = float(time_multiplier)
        extra_attempts = int(extra_attempts)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("The time multiplier and the extra attempts must be numbers.") from exc
    if not 1.0 <= time_multiplier <= MAX_TIME_MULTIPLIER:
        raise InvalidInput(f"The time multiplier must be between 1 and {MAX_TIME_MULTIPLIER:g}.")
    if not 0 <= extra_attempts <= MAX_EXTRA_ATTEMPTS:
        raise InvalidInput(f"Extra attempts must be between 0 and {MAX_EXTRA_ATTEMPTS}.")
    note = _plain_text(note, limit=500, what="note")
    with transaction.atomic():
        attempts = list(
            Attempt.objects.select_for_update(of=("self",))
            .select_related("placement__challenge_set", "placement__resource_link", "lti_user")
            .filter(placement=placement, lti_user=lti_user, finished_at__isnull=True)
        )
        audit.record(
            placement, audit.Action.ACCOMMODATION, actor=granted_by, now=now, student=lti_user,
            before=_accommodation_snapshot(_accommodation(placement, lti_user.pk)),
            after={"time_multiplier": time_multiplier, "extra_attempts": extra_attempts, "note": note},
            note=note,
        )
        accommodation, _ = Accommodation.objects.update_or_create(
            placement=placement,
            lti_user=lti_user,
            defaults={
                "time_multiplier": time_multiplier,
                "extra_attempts": extra_attempts,
                "granted_by": granted_by,
                "note": note,
            },
        )
        for attempt in attempts:
            states = _states(attempt)
            if placement.rules.get("timer") == "whole_set":
                attempt.closes_at = set_closes_at(placement, attempt, time_multiplier)
                attempt.save(update_fields=["closes_at"])
            for state in states:
                if state.is_open and state.deadline is not None:
                    state.deadline = _question_deadline(placement, attempt, state, time_multiplier)
                    state.save(update_fields=["deadline"])
            _slide_idle_close(placement, attempt, states, max(now, attempt.last_activity_at))
            attempt.save(update_fields=["closes_at"])
            _settle(attempt, states, now)
        return accommodation


def _accommodation_snapshot(accommodation: Accommodation | None) -> dict[str, Any]:
    if accommodation is None:
        return {"time_multiplier": 1.0, "extra_attempts": 0, "note": ""}
    return {
        "time_multiplier": accommodation.time_multiplier,
        "extra_attempts": accommodation.extra_attempts,
        "note": accommodation.note,
    }


@dataclass
class Clock:
    """What the player shows about a question's time, computed on the server."""

    deadline: datetime | None
    remaining_s: int | None  # None: untimed


def question_clock(state: QuestionState, now: datetime | None = None) -> Clock:
    if state.deadline is None:
        return Clock(None, None)
    now = now or timezone.now()
    return Clock(state.deadline, max(0, int((state.deadline - now).total_seconds())))


def refresh_attempt(attempt: Attempt, *, now: datetime | None = None) -> Attempt:
    """Apply the clock to an attempt (expire questions, close it when its time is up) and return it fresh."""
    now = now or timezone.now()
    if attempt.is_finished:
        return attempt
    with transaction.atomic():
        attempt = _lock_attempt(attempt)
        _settle(attempt, _states(attempt), now)
        return attempt
