"""Gradebook verbs. `record_score` is the one entry point other apps call (inside their own transaction)."""

from __future__ import annotations

from typing import Any


def record_score(
    *,
    resource_link: Any,
    lti_user: Any,
    score_given: float | None,
    score_maximum: float,
    activity_progress: str,
    grading_progress: str,
    comment: str = "",
) -> Any:
    """Record a score change in the outbox, in the caller's transaction; delivered to the LMS after commit.

    Interface placeholder: the gradebook work (issue 5) implements it.
    """
    return None
