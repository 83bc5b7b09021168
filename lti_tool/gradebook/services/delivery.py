"""Gradebook verbs: record a score (outbox), deliver it to the LMS over AGS, show and repair the sync state.

`record_score` is the one entry point other apps call, inside their own `transaction.atomic`: it writes the outbox
row next to the grade and enqueues delivery once the transaction commits. Delivery is at-least-once (Celery
`acks_late` plus a periodic sweeper that re-enqueues from the database); the per-(link, user) AGS timestamp makes a
repeated delivery harmless, and a newer score always wins.

Delivery of one row goes in three steps so that no database transaction stays open while the LMS is talked to:
claim it (row lock with SKIP LOCKED, then a lease), call the LMS, and record the outcome if the claim is still ours.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from lti_tool.gradebook import ags, clock
from lti_tool.gradebook.models import LINE_ITEM_TAG, LineItem, ScoreUpdate
from lti_tool.models import Context, LtiUser, Registration, ResourceLink

logger = logging.getLogger(__name__)

State = ScoreUpdate.State
FULLY_GRADED = ScoreUpdate.GradingProgress.FULLY_GRADED
PENDING = ScoreUpdate.GradingProgress.PENDING

# Moodle compares timestamps in whole seconds (409 on an equal one): consecutive scores are at least this far apart.
MIN_TIMESTAMP_GAP = timedelta(seconds=1)
# Retry-After is honoured, but a platform cannot park a score for longer than this per attempt.
MAX_RETRY_AFTER_S = 6 * 3600
# Waits up to this long are scheduled on the broker (countdown); longer ones are left to the sweeper, because a
# Redis broker redelivers unacknowledged messages after its visibility timeout.
MAX_COUNTDOWN_S = 300
# A claimed row is someone's for this long (enough for every HTTP call one delivery can make, each with a timeout).
CALLS_PER_DELIVERY = 8


def _lease() -> timedelta:
    return timedelta(seconds=settings.LTI_HTTP_TIMEOUT_S * CALLS_PER_DELIVERY + 5)


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


def _registration_of(resource_link: ResourceLink) -> Registration:
    return resource_link.context.deployment.registration


def is_moodle_style(resource_link: ResourceLink) -> bool:
    """Whether the platform behind this link drops non-final scores the Moodle way: the registration says Moodle,
    or its AGS URLs carry Moodle's `type_id` query parameter (a Moodle that registered by hand, Moodle-likes)."""
    registration = _registration_of(resource_link)
    if registration.product_family.strip().lower() == "moodle":
        return True
    urls = (resource_link.lineitem_url, resource_link.context.lineitems_url)
    return any("type_id=" in urlsplit(url).query for url in urls if url)


# --- Recording ----------------------------------------------------------------------------------------------------


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
    registration = _registration_of(resource_link)
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
    transaction.on_commit(lambda pk=update.pk: _enqueue(pk))
    return update


def _enqueue(score_update_id: int, countdown: float | None = None) -> None:
    """Put a delivery task on the broker. A broker failure is logged: the sweeper finds the row later anyway."""
    from lti_tool.gradebook.tasks import deliver_score

    try:
        deliver_score.apply_async((score_update_id,), countdown=countdown)
    except Exception:  # noqa: BLE001 - the database row is the truth; never fail the caller over the broker
        logger.warning("could not enqueue score delivery", extra={"score_update_id": score_update_id}, exc_info=True)
        ScoreUpdate.objects.filter(pk=score_update_id).update(enqueued_at=None)


# --- Delivery -----------------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    state: str
    detail: str = ""
    status_code: int | None = None
    retry_in_s: float | None = None


def backoff_delay(attempts: int, *, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: exponential (base doubling up to the cap) with jitter
    (between half and all of it, so a crowd of retries spreads out), and never less than the LMS's Retry-After."""
    base = settings.GRADEBOOK_BACKOFF_BASE_S
    cap = settings.GRADEBOOK_BACKOFF_CAP_S
    exponential = min(cap, base * (2 ** max(0, min(attempts, 40) - 1)))
    delay = exponential * (rng or random).uniform(0.5, 1.0)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def _claim(score_update_id: int, *, ignore_schedule: bool) -> tuple[ScoreUpdate | None, str]:
    """Lock the row briefly, check it is still to be sent, and lease it to this worker."""
    with transaction.atomic():
        row = ScoreUpdate.objects.select_for_update(skip_locked=True).filter(pk=score_update_id).first()
        if row is None:
            return None, "busy"
        if row.state != State.WAITING:
            return None, row.state
        now = clock.now()
        if row.claimed_until is not None and row.claimed_until > now:
            return None, "busy"
        if not ignore_schedule and row.next_attempt_at > now + timedelta(seconds=1):
            return None, "not_due"
        if _newer_exists(row):
            row.state = State.SUPERSEDED
            row.last_error = "Replaced by a newer score before it was delivered."
            row.save(update_fields=["state", "last_error", "updated_at"])
            return None, State.SUPERSEDED
        row.attempts += 1
        row.claim = uuid.uuid4()
        row.claimed_until = now + _lease()
        row.enqueued_at = None  # this message is being handled; if we die, the sweeper re-enqueues after the lease
        row.save(update_fields=["attempts", "claim", "claimed_until", "enqueued_at", "updated_at"])
    # What the attempt needs, read after the short claim transaction (simple queries: cheap to build and run).
    row.resource_link = ResourceLink.objects.select_related("context__deployment__registration").get(
        pk=row.resource_link_id
    )
    return row, "claimed"


def _newer_than(resource_link_id: Any, lti_user_id: Any, timestamp: Any) -> Any:
    """Rows of the same student and placement that are newer and meant to be sent (skipped ones never count)."""
    return ScoreUpdate.objects.filter(
        resource_link_id=resource_link_id, lti_user_id=lti_user_id, timestamp__gt=timestamp
    ).exclude(state=State.SKIPPED)


def _newer_exists(row: ScoreUpdate) -> bool:
    return _newer_than(row.resource_link_id, row.lti_user_id, row.timestamp).exists()


def deliver_score_update(score_update_id: int, *, ignore_schedule: bool = False) -> str:
    """Try to deliver one outbox row now. Returns what became of it: delivered, waiting (a retry is scheduled),
    refused, superseded, or why nothing was done (busy: another worker has it; not_due; skipped...).

    Idempotent: a row that is delivered, refused or superseded is never sent again.
    """
    row, status = _claim(score_update_id, ignore_schedule=ignore_schedule)
    if row is None:
        return status
    outcome = _attempt(row)
    return _finish(row, outcome)


def _attempt(row: ScoreUpdate) -> _Outcome:
    """Everything that talks to the LMS for one row (no transaction is open here)."""
    resource_link = row.resource_link
    registration = _registration_of(resource_link)
    if not registration.is_active:
        return _Outcome(
            State.WAITING,
            "The tool's registration for this LMS is not active yet (IT must approve or enable it).",
        )
    scopes = ags.granted(registration, (ags.SCOPE_SCORE,), resource_link.context.ags_scopes)
    canvas_like = not is_moodle_style(resource_link)
    try:
        # The token first: while the LMS is down this is where an attempt ends, before any other work.
        ags.access_token(registration, scopes)
        line_item = resolve_line_item(resource_link, score_maximum=row.score_maximum)
        row.line_item = line_item
        # Canvas grades (and pass/fail passes) at any FullyGraded score: work not handed in yet goes as progress.
        grading_progress = row.grading_progress if _handed_in(row) or not canvas_like else PENDING
        keep_teacher_grades = canvas_like and _is_grade(row) and _keeps_teacher_grades(row)
        earlier = _last_delivered_final(row) if keep_teacher_grades else None
        if earlier is not None:
            teacher_grade = _teacher_grade_in_lms(row, earlier)
            if teacher_grade is not None:
                return _Outcome(State.KEPT, teacher_grade)
        payload = ags.score_payload(
            user_id=row.lti_user.sub,
            score_given=row.score_given,
            score_maximum=row.score_maximum,
            activity_progress=row.activity_progress,
            grading_progress=grading_progress,
            timestamp=_iso(row.timestamp),
            comment=row.comment,
            new_submission=_opens_submission(row),
            submitted_at=_iso(row.submitted_at) if row.submitted_at else "",
            # The tool's first grade for this student: whatever grade the LMS holds already is a teacher's.
            prioritize_non_tool_grade=keep_teacher_grades and earlier is None,
            canvas_extension=canvas_like,
        )
        response = ags.post_score(registration, line_item.url, payload, scopes)
    except ags.ServiceError as exc:
        if exc.retryable:
            return _Outcome(State.WAITING, exc.detail, exc.status_code, exc.retry_after_s)
        return _Outcome(State.REFUSED, explain_refusal(exc.status_code, exc.body, exc.detail), exc.status_code)
    return _classify_score_response(row, response)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


HANDED_IN = (ScoreUpdate.ActivityProgress.SUBMITTED, ScoreUpdate.ActivityProgress.COMPLETED)


def _handed_in(row: ScoreUpdate) -> bool:
    """Whether the score is for work the student handed in (finished), not their progress mid-attempt."""
    return row.activity_progress in HANDED_IN


def _is_grade(row: ScoreUpdate) -> bool:
    """A final grade of handed-in work: what Canvas shows as the student's grade."""
    return row.is_final and _handed_in(row)


def _opens_submission(row: ScoreUpdate) -> bool:
    """Canvas `new_submission`: only the first delivered score of a hand-in (the student finished, at
    `submitted_at`) opens a submission. Progress mid-attempt and regrades of the same hand-in do not, so Canvas
    shows "submitted" when the student finishes and counts one submission per finished attempt."""
    if not _handed_in(row):
        return False
    same_hand_in = {"submitted_at": row.submitted_at} if row.submitted_at else {"submitted_at__isnull": True}
    return not _earlier_delivered(row).filter(activity_progress__in=HANDED_IN, **same_hand_in).exists()


def _earlier_delivered(row: ScoreUpdate) -> Any:
    return ScoreUpdate.objects.filter(
        resource_link_id=row.resource_link_id,
        lti_user_id=row.lti_user_id,
        state=State.DELIVERED,
        timestamp__lt=row.timestamp,
    )


def _last_delivered_final(row: ScoreUpdate) -> ScoreUpdate | None:
    earlier = _earlier_delivered(row).filter(grading_progress=FULLY_GRADED, activity_progress__in=HANDED_IN)
    return earlier.order_by("-timestamp").first()


def _same_score(lms_score: float, result: dict[str, Any], sent: ScoreUpdate) -> bool:
    """Whether the LMS's result is the score the tool sent: as sent (Canvas keeps scoreGiven), or the same share of
    the maximum (LMSs that report results on the column's scale)."""
    if math.isclose(lms_score, sent.score_given or 0.0, abs_tol=1e-6):
        return True
    maximum = _float_or_none(result.get("resultMaximum"))
    return bool(maximum) and math.isclose(
        lms_score / maximum, (sent.score_given or 0.0) / sent.score_maximum, abs_tol=1e-6
    )


def _keeps_teacher_grades(row: ScoreUpdate) -> bool:
    return settings.GRADEBOOK_TEACHER_GRADES == "keep" and not row.overwrite_lms_grade


def _teacher_grade_in_lms(row: ScoreUpdate, earlier: ScoreUpdate) -> str | None:
    """Why the LMS's grade is kept (a teacher changed it by hand since the tool's last score), or None to send.

    Canvas keeps the tool's result time when a teacher edits a grade, so nothing in the score answer tells; the
    tool reads the LMS's result instead and compares it with the last score it delivered.
    """
    resource_link = row.resource_link
    offered = resource_link.context.ags_scopes
    if offered and ags.SCOPE_RESULT_READONLY not in offered:
        return None  # the LMS lets the tool read no results: it cannot tell, so it sends
    try:
        result = ags.current_result(
            _registration_of(resource_link), row.line_item.url, row.lti_user.sub, (ags.SCOPE_RESULT_READONLY,)
        )
    except ags.ServiceError as exc:
        if exc.retryable and (exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429):
            raise  # the LMS is down or busy: the score would not get through now either
        return None  # results are not readable here (scope not granted, refused): send as before
    lms_score = _float_or_none((result or {}).get("resultScore"))
    if lms_score is None or earlier.score_given is None or _same_score(lms_score, result or {}, earlier):
        return None
    return (
        f"A teacher changed this grade in the LMS by hand (the LMS shows {lms_score:g}; the tool last sent "
        f"{earlier.score_given:g}), so the tool kept the teacher's grade and did not send its newer score. To replace "
        "the teacher's grade with the tool's, use \u201cSend all grades again\u201d."
    )


def _is_stale_answer(status: int, body: str) -> bool:
    """Moodle 409 "earlier timestamp"; Canvas 400 "before last updated timestamp"."""
    lowered = body.lower()
    return status == 409 or (status == 400 and "timestamp" in lowered and ("before" in lowered or "earlier" in lowered))


def _stale_explanation(status: int) -> str:
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


def _classify_score_response(row: ScoreUpdate, response: Any) -> _Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return _Outcome(State.DELIVERED, "", status)
    body = ags.platform_text(response)
    if _is_stale_answer(status, body):
        if row.attempts > 1:
            # A retry: our earlier attempt most likely went through, or a newer score of ours did.
            if _newer_exists(row):
                return _Outcome(State.SUPERSEDED, "Replaced by a newer score.", status)
            return _Outcome(State.DELIVERED, "The LMS already had this score (confirmed on a retry).", status)
        return _Outcome(State.REFUSED, _stale_explanation(status), status)
    error = ags.error_from_response(response, "receiving this score")
    if error.retryable:
        return _Outcome(State.WAITING, error.detail, status, error.retry_after_s)
    if status == 404 and not row.resource_link.lineitem_url and row.line_item_id:
        # A column we found or created has gone: find or create it again on the next send.
        LineItem.objects.filter(pk=row.line_item_id).delete()
        row.line_item = None
    return _Outcome(State.REFUSED, explain_refusal(status, body, error.detail), status)


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


def _finish(row: ScoreUpdate, outcome: _Outcome) -> str:
    """Record the outcome if the row is still ours (one conditional UPDATE); schedule the next attempt or give up."""
    now = clock.now()
    fields: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "claim": None,
        "claimed_until": None,
        "line_item_id": row.line_item_id,  # resolved (or forgotten) by this attempt
        "last_error": outcome.detail,
        "updated_at": timezone.now(),
    }
    countdown: float | None = None
    state = outcome.state
    if state == State.DELIVERED:
        fields.update(state=State.DELIVERED, delivered_at=now)
    elif state in (State.REFUSED, State.SUPERSEDED, State.KEPT):
        fields["state"] = state
    else:
        delay = backoff_delay(row.attempts, retry_after_s=outcome.retry_in_s)
        deadline = row.created_at + timedelta(seconds=settings.GRADEBOOK_RETRY_BUDGET_S)
        if now + timedelta(seconds=delay) > deadline:
            hours = (now - row.created_at).total_seconds() / 3600
            state = State.REFUSED
            fields["state"] = State.REFUSED
            fields["last_error"] = (
                f"Gave up after {row.attempts} attempts over {hours:.1f} h: {outcome.detail} When the LMS works "
                "again, use \u201cSend all grades again\u201d."
            )
        else:
            fields["next_attempt_at"] = now + timedelta(seconds=delay)
            if delay <= MAX_COUNTDOWN_S:
                countdown = delay
                fields["enqueued_at"] = fields["next_attempt_at"]
            else:
                fields["enqueued_at"] = None
    updated = ScoreUpdate.objects.filter(pk=row.pk, state=State.WAITING, claim=row.claim).update(**fields)
    if not updated:
        # Superseded meanwhile, or our lease ran out and another worker owns the row. A confirmed delivery is
        # still worth recording; anything else is the other party's business.
        if state == State.DELIVERED:
            if ScoreUpdate.objects.filter(pk=row.pk, state=State.WAITING).update(**fields):
                return _finished(row, state, outcome)
            ScoreUpdate.objects.filter(pk=row.pk, state=State.SUPERSEDED).update(delivered_at=now)
        current = ScoreUpdate.objects.filter(pk=row.pk).values_list("state", flat=True).first()
        return "busy" if current == State.WAITING else (current or "gone")
    if countdown is not None:
        transaction.on_commit(lambda pk=row.pk, c=countdown: _enqueue(pk, countdown=c))
    return _finished(row, state, outcome)


def _finished(row: ScoreUpdate, state: str, outcome: _Outcome) -> str:
    _count(state)
    logger.info(
        "score delivery attempt",
        extra={
            "score_update_id": row.pk,
            "state": state,
            "attempts": row.attempts,
            "status_code": outcome.status_code,
        },
    )
    return state


def _count(state: str) -> None:
    try:
        from config.metrics import GRADEBOOK_DELIVERIES

        GRADEBOOK_DELIVERIES.labels(outcome=state).inc()
    except Exception:  # noqa: BLE001 - metrics never break delivery
        logger.debug("metrics unavailable", exc_info=True)


def resolve_line_item(resource_link: ResourceLink, *, score_maximum: float) -> LineItem:
    """The gradebook column this placement's scores go to.

    The launch's `lineitem` claim wins (it is the column the platform coupled to the link, deep-linked or not);
    otherwise the link's line item is found by resource link (and our tag) in the context's line items, or created.
    """
    if resource_link.lineitem_url:
        item = LineItem.objects.filter(resource_link=resource_link, tag=LINE_ITEM_TAG).first()
        if item is not None and item.url == resource_link.lineitem_url:
            return item
        with transaction.atomic():
            item, created = LineItem.objects.get_or_create(
                resource_link=resource_link,
                tag=LINE_ITEM_TAG,
                defaults={
                    "url": resource_link.lineitem_url,
                    "label": resource_link.title[:500],
                    "score_maximum": score_maximum,
                },
            )
            if not created and item.url != resource_link.lineitem_url:
                item.url = resource_link.lineitem_url
                item.save(update_fields=["url", "updated_at"])
        return item
    existing = LineItem.objects.filter(resource_link=resource_link, tag=LINE_ITEM_TAG).first()
    if existing is not None:
        return existing
    context = resource_link.context
    if not context.lineitems_url:
        raise ags.ServiceError(
            "The LMS gave this placement no gradebook column and no way to create one (its launches carry no "
            "grade service). Ask your LMS administrator to enable grade sync (Assignment and Grade Services) for "
            "the tool, launch the activity once as an instructor,",
            retryable=False,
        )
    registration = _registration_of(resource_link)
    # Only one worker finds-or-creates a column for a link at a time (two would create two columns). The lock is in
    # the shared cache, not the database: no transaction may stay open while the LMS is talked to.
    lock = f"gradebook:line-item-lock:{resource_link.pk}"
    if not cache.add(lock, "1", timeout=int(_lease().total_seconds())):
        raise ags.ServiceError("Another worker is setting up the gradebook column; trying again shortly.", True)
    try:
        existing = LineItem.objects.filter(resource_link=resource_link, tag=LINE_ITEM_TAG).first()
        if existing is not None:
            return existing
        read_scopes = ags.granted(registration, (ags.SCOPE_LINEITEM, ags.SCOPE_LINEITEM_READONLY), context.ags_scopes)
        found = ags.find_line_item(
            registration,
            context.lineitems_url,
            resource_link_id=resource_link.resource_link_id,
            tag=LINE_ITEM_TAG,
            scopes=read_scopes,
        )
        if found is None:
            found = ags.create_line_item(
                registration,
                context.lineitems_url,
                resource_link_id=resource_link.resource_link_id,
                label=resource_link.title or settings.LTI_TOOL_TITLE,
                score_maximum=score_maximum,
                tag=LINE_ITEM_TAG,
                resource_id=str((resource_link.custom or {}).get("placement", ""))[:255],
                scopes=ags.granted(registration, (ags.SCOPE_LINEITEM,), context.ags_scopes),
            )
        item, _ = LineItem.objects.get_or_create(
            resource_link=resource_link,
            tag=LINE_ITEM_TAG,
            defaults={
                "url": str(found["id"])[:1000],
                "label": str(found.get("label", ""))[:500],
                "score_maximum": _float_or_none(found.get("scoreMaximum")),
                "resource_id": str(found.get("resourceId") or "")[:255],
            },
        )
        return item
    finally:
        cache.delete(lock)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- Sweeping ------------------------------------------------------------------------------------------------------


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
            transaction.on_commit(lambda: [_enqueue(pk) for pk in ids])
    return len(ids)


def due_score_ids(*, include_not_due: bool = False, limit: int = 10_000) -> list[int]:
    """Ids of waiting rows that may be attempted now (all waiting rows with include_not_due), oldest due first."""
    rows = ScoreUpdate.objects.filter(state=State.WAITING)
    if not include_not_due:
        rows = rows.filter(_due_filter(clock.now()))
    return list(rows.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


def deliver_due_now(*, include_not_due: bool = False, limit: int = 10_000) -> dict[str, int]:
    """Deliver waiting rows in this process (management command, scripts); returns counts by outcome."""
    counts: dict[str, int] = {}
    for pk in due_score_ids(include_not_due=include_not_due, limit=limit):
        outcome = deliver_score_update(pk, ignore_schedule=include_not_due)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def outbox_counts() -> dict[str, int]:
    """How many outbox rows are in each state."""
    counts = {state: 0 for state in State.values}
    for state in ScoreUpdate.objects.values_list("state", flat=True).iterator():
        counts[state] += 1
    return counts


# --- Instructor side ------------------------------------------------------------------------------------------------


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


def sync_status(resource_link: ResourceLink) -> dict[int, dict[str, Any]]:
    """Gradebook sync state per student of a placement: lti_user_pk -> {state (delivered|waiting|refused), detail
    (what happened and what to do), score, score_maximum, grading_progress, attempts, updated_at}."""
    status: dict[int, dict[str, Any]] = {}
    latest = latest_scores(resource_link)
    progress_only = not is_moodle_style(resource_link)  # Canvas-like LMSs get no grade mid-attempt
    for user_pk, row in latest.items():
        if row.state == State.DELIVERED:
            state, detail = "delivered", f"In the LMS gradebook since {row.delivered_at:%Y-%m-%d %H:%M} UTC."
            if not row.is_final or (progress_only and not _handed_in(row)):
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


def sync_roster(context: Context) -> int:
    """Fetch the course roster over NRPS and store it as Membership rows (from_roster=True for new ones); returns
    the number of active members seen. Raises ags.ServiceError when the LMS cannot be asked."""
    from lti_tool.gradebook import nrps

    return nrps.sync_roster(context)


# An instructor's launch refreshes the course roster in the background at most this often per context, so their
# pages list the students who have not started without anyone pressing "Sync roster".
ROSTER_SYNC_INTERVAL_S = 3600


def _roster_sync_key(context_pk: int) -> str:
    return f"lti:roster-sync:{context_pk}"


def request_roster_sync(context: Context) -> bool:
    """Queue a background roster sync for this context unless one ran (or was queued) within the interval; returns
    whether one was queued. Contexts without a membership service are skipped."""
    if not context.memberships_url:
        return False
    if not cache.add(_roster_sync_key(context.pk), "queued", ROSTER_SYNC_INTERVAL_S):
        return False
    transaction.on_commit(lambda pk=context.pk: _enqueue_roster_sync(pk))
    return True


def _enqueue_roster_sync(context_pk: int) -> None:
    from lti_tool.gradebook.tasks import sync_roster as sync_roster_task

    try:
        sync_roster_task.delay(context_pk)
    except Exception:  # noqa: BLE001 - a roster refresh is a convenience; never fail a launch over the broker
        logger.warning("could not enqueue a roster sync", extra={"context": context_pk}, exc_info=True)
        cache.delete(_roster_sync_key(context_pk))


def sync_roster_in_background(context_pk: int) -> int | None:
    """The background sync (a Celery task): the number of members, or None when the LMS could not be asked (then
    the next instructor launch tries again)."""
    context = Context.objects.select_related("deployment__registration").filter(pk=context_pk).first()
    if context is None:
        return None
    try:
        return sync_roster(context)
    except ags.ServiceError as exc:
        logger.warning("roster sync failed", extra={"context": context_pk, "detail": exc.detail})
        cache.delete(_roster_sync_key(context_pk))
        return None
