"""Delivery of one outbox row to the LMS over AGS, in three steps so that no database transaction stays open while
the LMS is talked to: claim it (row lock with SKIP LOCKED, then a lease), call the LMS, and record the outcome if
the claim is still ours. At-least-once (Celery `acks_late` plus the sweeper); the per-(link, user) AGS timestamp makes
a repeated delivery harmless, and a newer score always wins."""

from __future__ import annotations

import logging
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from config import clock
from lti_tool.gradebook import ags
from lti_tool.gradebook.models import LINE_ITEM_TAG, LineItem, ScoreUpdate
from lti_tool.gradebook.services import outbox
from lti_tool.gradebook.services.outbox import (
    FULLY_GRADED,
    HANDED_IN,
    PENDING,
    State,
    due_score_ids,
    handed_in,
    is_moodle_style,
    registration_of,
)
from lti_tool.gradebook.services.status import explain_refusal, stale_explanation
from lti_tool.models import ResourceLink

logger = logging.getLogger(__name__)


# Retry-After is honoured, but a platform cannot park a score for longer than this per attempt.
MAX_RETRY_AFTER_S = 6 * 3600


# Waits up to this long are scheduled on the broker (countdown); longer ones are left to the sweeper, because a
# Redis broker redelivers unacknowledged messages after its visibility timeout.
MAX_COUNTDOWN_S = 300


# A claimed row is someone's for this long (enough for every HTTP call one delivery can make, each with a timeout).
CALLS_PER_DELIVERY = 8


def _lease() -> timedelta:
    return timedelta(seconds=settings.LTI_HTTP_TIMEOUT_S * CALLS_PER_DELIVERY + 5)


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
    registration = registration_of(resource_link)
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
        grading_progress = row.grading_progress if handed_in(row) or not canvas_like else PENDING
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


def _is_grade(row: ScoreUpdate) -> bool:
    """A final grade of handed-in work: what Canvas shows as the student's grade."""
    return row.is_final and handed_in(row)


def _opens_submission(row: ScoreUpdate) -> bool:
    """Canvas `new_submission`: only the first delivered score of a hand-in (the student finished, at
    `submitted_at`) opens a submission. Progress mid-attempt and regrades of the same hand-in do not, so Canvas
    shows "submitted" when the student finishes and counts one submission per finished attempt."""
    if not handed_in(row):
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
            registration_of(resource_link), row.line_item.url, row.lti_user.sub, (ags.SCOPE_RESULT_READONLY,)
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
        return _Outcome(State.REFUSED, stale_explanation(status), status)
    error = ags.error_from_response(response, "receiving this score")
    if error.retryable:
        return _Outcome(State.WAITING, error.detail, status, error.retry_after_s)
    if status == 404 and not row.resource_link.lineitem_url and row.line_item_id:
        # A column we found or created has gone: find or create it again on the next send.
        LineItem.objects.filter(pk=row.line_item_id).delete()
        row.line_item = None
    return _Outcome(State.REFUSED, explain_refusal(status, body, error.detail), status)


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
        transaction.on_commit(lambda pk=row.pk, c=countdown: outbox.enqueue(pk, countdown=c))
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
    registration = registration_of(resource_link)
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


def deliver_due_now(*, include_not_due: bool = False, limit: int = 10_000) -> dict[str, int]:
    """Deliver waiting rows in this process (management command, scripts); returns counts by outcome."""
    counts: dict[str, int] = {}
    for pk in due_score_ids(include_not_due=include_not_due, limit=limit):
        outcome = deliver_score_update(pk, ignore_schedule=include_not_due)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
