"""The gradebook outbox: `record_score` writes a ScoreUpdate row next to the grade and enqueues its delivery once
the transaction commits; the sweeper re-enqueues what the broker lost; "send all grades again" records anew."""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from config import clock
from lti_tool.gradebook.models import ScoreUpdate
from lti_tool.models import LtiUser, Registration, ResourceLink

logger = logging.getLogger(__name__)


State = ScoreUpdate.State


FULLY_GRADED = ScoreUpdate.GradingProgress.FULLY_GRADED


PENDING = ScoreUpdate.GradingProgress.PENDING


# Moodle compares timestamps in whole seconds (409 on an equal one): consecutive scores are at least this far apart.
MIN_TIMESTAMP_GAP = timedelta(seconds=1)


def _now_ms() -> datetime:
    now = clock.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _advisory_lock(name: str) -> None:
    """Serialise writers of one logical thing until the end of the current transaction (PostgreSQL only;
    SQLite already serialises every write transaction)."""
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def registration_of(resource_link: ResourceLink) -> Registration:
    return resource_link.context.deployment.registration


def is_moodle_style(resource_link: ResourceLink) -> bool:
    """Whether the platform behind this link drops non-final scores the Moodle way: the registration says Moodle,
    or its AGS URLs carry Moodle's `type_id` query parameter (a Moodle that registered by hand, Moodle-likes)."""
    registration = registration_of(resource_link)
    if registration.product_family.strip().lower() == "moodle":
        return True
    urls = (resource_link.lineitem_url, resource_link.context.lineitems_url)
    return any("type_id=" in urlsplit(url).query for url in urls if url)


def record_score(
    *,
    resource_link: ResourceLink,
    lti_user: LtiUser,
    score_given: float | None,
    score_maximum: float,
    activity_progress: str,
    grading_progress: str,
    comment: str = "",
    submitted_at: datetime | None = None,
    overwrite_lms_grade: bool = False,
) -> ScoreUpdate:
    """Record a score change in the outbox, in the caller's transaction; it is delivered to the LMS after commit.

    Must be called inside `transaction.atomic` (the row commits or rolls back with the grade it reports). The row's
    AGS timestamp is now (milliseconds), but at least one second after the previous score of this user in this
    placement. Older scores still waiting are superseded: the newest always wins. A non-final score for a
    Moodle-style platform is stored but never sent (Moodle drops the grade of any score that is not FullyGraded).

    `submitted_at`: when the student handed in the work this score grades (None while they are still working); the
    first score of each hand-in opens a submission in Canvas, dated so. `overwrite_lms_grade`: send it even over a
    grade a teacher changed by hand in the LMS (otherwise settings.GRADEBOOK_TEACHER_GRADES decides).
    """
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("record_score must be called inside transaction.atomic")
    if activity_progress not in ScoreUpdate.ActivityProgress.values:
        raise ValueError(f"unknown activityProgress {activity_progress!r}")
    if grading_progress not in ScoreUpdate.GradingProgress.values:
        raise ValueError(f"unknown gradingProgress {grading_progress!r}")
    if not (math.isfinite(score_maximum) and score_maximum > 0):
        raise ValueError("score_maximum must be a positive number")
    if score_given is not None and not (math.isfinite(score_given) and score_given >= 0):
        raise ValueError("score_given must be a non-negative number or None")
    if grading_progress == FULLY_GRADED and score_given is None:
        raise ValueError("a FullyGraded score needs score_given")
    registration = registration_of(resource_link)
    if lti_user.registration_id != registration.pk:
        raise ValueError("the user and the resource link belong to different platforms")

    # Two scores of one student in one placement are ordered, even when recorded concurrently.
    _advisory_lock(f"gradebook-score:{resource_link.pk}:{lti_user.pk}")
    previous = ScoreUpdate.objects.filter(resource_link=resource_link, lti_user=lti_user).order_by("-timestamp").first()
    now = _now_ms()
    timestamp = now if previous is None else max(now, previous.timestamp + MIN_TIMESTAMP_GAP)
    skipped = grading_progress != FULLY_GRADED and is_moodle_style(resource_link)
    update = ScoreUpdate.objects.create(
        resource_link=resource_link,
        lti_user=lti_user,
        score_given=score_given,
        score_maximum=score_maximum,
        activity_progress=activity_progress,
        grading_progress=grading_progress,
        comment=(comment or "")[:1000],
        timestamp=timestamp,
        submitted_at=submitted_at,
        overwrite_lms_grade=overwrite_lms_grade,
        state=State.SKIPPED if skipped else State.WAITING,
        last_error=(
            "Not sent: this LMS (Moodle) clears the grade of any score that is not final; the final score is sent."
            if skipped
            else ""
        ),
        next_attempt_at=now,
        enqueued_at=None if skipped else now,
        created_at=now,
    )
    if skipped:
        return update
    # Skip rows a worker is finalising right now: it re-checks for newer scores itself.
    older = list(
        ScoreUpdate.objects.select_for_update(skip_locked=True)
        .filter(resource_link=resource_link, lti_user=lti_user, state=State.WAITING, timestamp__lt=timestamp)
        .values_list("pk", flat=True)
    )
    if older:
        ScoreUpdate.objects.filter(pk__in=older, state=State.WAITING).update(
            state=State.SUPERSEDED, last_error="Replaced by a newer score before it was delivered."
        )
    transaction.on_commit(lambda pk=update.pk: enqueue(pk))
    return update


def enqueue(score_update_id: int, countdown: float | None = None) -> None:
    """Put a delivery task on the broker. A broker failure is logged: the sweeper finds the row later anyway."""
    from lti_tool.gradebook.tasks import deliver_score

    try:
        deliver_score.apply_async((score_update_id,), countdown=countdown)
    except Exception:  # noqa: BLE001 - the database row is the truth; never fail the caller over the broker
        logger.warning("could not enqueue score delivery", extra={"score_update_id": score_update_id}, exc_info=True)
        ScoreUpdate.objects.filter(pk=score_update_id).update(enqueued_at=None)


HANDED_IN = (ScoreUpdate.ActivityProgress.SUBMITTED, ScoreUpdate.ActivityProgress.COMPLETED)


def handed_in(row: ScoreUpdate) -> bool:
    """Whether the score is for work the student handed in (finished), not their progress mid-attempt."""
    return row.activity_progress in HANDED_IN


def _due_filter(now: datetime) -> Q:
    return Q(state=State.WAITING, next_attempt_at__lte=now) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def enqueue_due_scores(*, limit: int = 1000) -> int:
    """Re-enqueue waiting rows that are due and whose message is missing (never sent, lost, or its worker died).

    Rows enqueued less than GRADEBOOK_REQUEUE_AFTER_S ago are left alone, so a slow queue is not flooded.
    """
    now = clock.now()
    stale = now - timedelta(seconds=settings.GRADEBOOK_REQUEUE_AFTER_S)
    with transaction.atomic():
        ids = list(
            ScoreUpdate.objects.select_for_update(skip_locked=True)
            .filter(_due_filter(now))
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            ScoreUpdate.objects.filter(pk__in=ids).update(enqueued_at=now)
            transaction.on_commit(lambda: [enqueue(pk) for pk in ids])
    return len(ids)


def due_score_ids(*, include_not_due: bool = False, limit: int = 10_000) -> list[int]:
    """Ids of waiting rows that may be attempted now (all waiting rows with include_not_due), oldest due first."""
    rows = ScoreUpdate.objects.filter(state=State.WAITING)
    if not include_not_due:
        rows = rows.filter(_due_filter(clock.now()))
    return list(rows.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


def outbox_counts() -> dict[str, int]:
    """How many outbox rows are in each state."""
    counts = {state: 0 for state in State.values}
    for state in ScoreUpdate.objects.values_list("state", flat=True).iterator():
        counts[state] += 1
    return counts


def latest_scores(resource_link: ResourceLink) -> dict[int, ScoreUpdate]:
    """Per student: the newest score row that is meant to reach the LMS (rows skipped on purpose excluded)."""
    latest: dict[int, ScoreUpdate] = {}
    rows = (
        ScoreUpdate.objects.filter(resource_link=resource_link)
        .exclude(state=State.SKIPPED)
        .order_by("lti_user_id", "-timestamp")
    )
    for row in rows.iterator():
        latest.setdefault(row.lti_user_id, row)
    return latest


def resend_all(resource_link: ResourceLink) -> int:
    """Send every student's latest score in this placement again, with fresh timestamps (after the instructor fixed
    an enrolment, re-opened a course, or wants the tool's scores back over hand edits: these go over a teacher's
    grade in the LMS whatever the policy). Returns how many."""
    with transaction.atomic():
        latest = latest_scores(resource_link)
        users = {u.pk: u for u in LtiUser.objects.filter(pk__in=list(latest))}
        for user_pk, row in latest.items():
            record_score(
                resource_link=resource_link,
                lti_user=users[user_pk],
                score_given=row.score_given,
                score_maximum=row.score_maximum,
                activity_progress=row.activity_progress,
                grading_progress=row.grading_progress,
                comment=row.comment,
                submitted_at=row.submitted_at,
                overwrite_lms_grade=True,
            )
    return len(latest)
