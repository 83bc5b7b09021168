"""The sync state in words for the instructor: per student, what became of the latest score and what to do."""

from __future__ import annotations

import logging
from typing import Any

from lti_tool.gradebook import ags
from lti_tool.gradebook.models import ScoreUpdate
from lti_tool.gradebook.services.outbox import State, handed_in, is_moodle_style, latest_scores
from lti_tool.models import ResourceLink

logger = logging.getLogger(__name__)


def stale_explanation(status: int) -> str:
    """Why the LMS refused a score as older than what it holds, in words for the instructor."""
    resend = "To send the tool's current grade with a fresh time, use \u201cSend all grades again\u201d."
    if status == 409:
        # Moodle compares with the grade's last change, which a teacher's edit in its gradebook also moves.
        return (
            "The LMS holds a newer grade for this student than this score (a later score, or a teacher's edit in the "
            f"LMS gradebook), so it refused this older one. {resend}"
        )
    # Canvas compares with the time of the tool's own last score: a teacher's edit never moves it.
    return (
        "The LMS already holds a score from the tool dated later than this one, so it refused this older one. This "
        "happens when this server's clock was set back or another copy of the tool sent a score for this student; "
        f"a change made by hand in the LMS does not cause it. {resend} If it happens again, ask IT to check this "
        "server's clock (NTP)."
    )


def explain_refusal(status: int | None, body: str, fallback: str) -> str:
    """A permanent refusal, in words for the instructor, with what to do about it."""
    lowered = (body or "").lower()
    resend = "then use \u201cSend all grades again\u201d."
    if status == 422 and ("not found in course" in lowered or "not a student" in lowered):
        return (
            "The LMS says this person is not (or no longer) a student in the course, so it has no gradebook entry "
            f"for them. If they should be graded, enrol them as a student, {resend}"
        )
    if status == 400 and "incorrect score" in lowered:
        return (
            "The LMS refused the score: this person is not enrolled in the course with a role that has grades "
            f"(for example they left the course or are not a student). If they should be graded, enrol them, {resend}"
        )
    if status == 404:
        return (
            "The LMS says the gradebook column or the course no longer accepts grades (the course may be concluded "
            f"or the assignment deleted). Re-open the course or restore the assignment, {resend}"
        )
    if status in (401, 403):
        return (
            "The LMS did not allow the tool to send grades. Ask your LMS administrator to allow the tool's grade "
            f"service (Assignment and Grade Services) for this course, {resend}"
        )
    if status is None:
        return f"{fallback} Check the placement in your LMS, {resend}"
    detail = f" The LMS said: {body.strip()[:200]}" if body.strip() else ""
    return f"The LMS refused this score (HTTP {status}).{detail} Check the assignment's settings in the LMS, {resend}"


def sync_status(resource_link: ResourceLink) -> dict[int, dict[str, Any]]:
    """Gradebook sync state per student of a placement: lti_user_pk -> {state (delivered|waiting|refused), detail
    (what happened and what to do), score, score_maximum, grading_progress, attempts, updated_at}."""
    status: dict[int, dict[str, Any]] = {}
    latest = latest_scores(resource_link)
    progress_only = not is_moodle_style(resource_link)  # Canvas-like LMSs get no grade mid-attempt
    for user_pk, row in latest.items():
        if row.state == State.DELIVERED:
            state, detail = "delivered", f"In the LMS gradebook since {row.delivered_at:%Y-%m-%d %H:%M} UTC."
            if not row.is_final or (progress_only and not handed_in(row)):
                detail = "In progress: the LMS keeps its current grade until the student finishes; then it is sent."
            if row.last_error:
                detail = row.last_error
        elif row.state == State.SUPERSEDED:
            state, detail = "delivered", "The LMS already holds a newer grade."
        elif row.state == State.REFUSED:
            state, detail = "refused", row.last_error
        elif row.state == State.KEPT:
            state, detail = "kept", row.last_error
        elif row.attempts == 0:
            state, detail = "waiting", "Queued: being sent to the LMS."
        else:
            state = "waiting"
            # A refused token because of this server's clock needs IT; anything else mends itself.
            todo = "IT must act." if row.last_error.startswith(ags.CLOCK_REFUSAL) else "nothing to do."
            detail = (
                f"Not delivered yet ({row.attempts} attempt{'s' if row.attempts != 1 else ''}): {row.last_error} "
                f"Next try around {row.next_attempt_at:%H:%M} UTC; {todo}"
            )
        status[user_pk] = {
            "state": state,
            "detail": detail,
            "score": row.score_given,
            "score_maximum": row.score_maximum,
            "grading_progress": row.grading_progress,
            "attempts": row.attempts,
            "updated_at": row.updated_at,
        }
    # Students whose only scores were held back on purpose (a code answer still being graded, on Moodle).
    held = (
        ScoreUpdate.objects.filter(resource_link=resource_link, state=State.SKIPPED)
        .exclude(lti_user_id__in=list(latest))
        .order_by("lti_user_id", "-timestamp")
    )
    for row in held.iterator():
        status.setdefault(
            row.lti_user_id,
            {
                "state": "waiting",
                "detail": "Grading in progress: the grade is sent to the LMS when it is final.",
                "score": None,
                "score_maximum": row.score_maximum,
                "grading_progress": row.grading_progress,
                "attempts": 0,
                "updated_at": row.updated_at,
            },
        )
    return status
