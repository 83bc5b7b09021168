"""A mode's rules and the clocks: attempts allowed, deadlines (with a student's accommodation), the whole-set clock
and the idle close of per-question timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from quizzes.models import Accommodation, Attempt, Placement, QuestionState
from quizzes.services.errors import NotFound


def attempts_allowed(rules: dict[str, Any], challenge: dict[str, Any], extra: int = 0) -> int | None:
    """How many attempts a challenge allows under a mode's rules (None: unlimited)."""
    limit = rules.get("attempts")
    if limit is None:
        return None
    base = int(challenge["attempts"]) if limit == "content" else int(limit)
    return base + extra


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
