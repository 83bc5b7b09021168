"""Accommodations: more time (a multiplier of every limit) and extra attempts for one student, applied to what is
still open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from quizzes import audit
from quizzes.models import Accommodation, Attempt, Placement
from quizzes.services.attempts import _settle, _states
from quizzes.services.errors import InvalidInput, _plain_text
from quizzes.services.rules import _accommodation, _question_deadline, _slide_idle_close, set_closes_at

MAX_TIME_MULTIPLIER = 10.0
MAX_EXTRA_ATTEMPTS = 100


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
