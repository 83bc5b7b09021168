"""Domain verbs of code grading: validate, then act, inside transaction.atomic.

The life of a submission: `submit_code` stores it (status queued) and enqueues `grading.tasks.grade_submission`
on the `gpu` queue after commit. A worker calls `grade_submission_now`: `begin_grading` marks it running (once per
delivery), a warm sandbox runs the code and the challenge's probe, the judge scores the measurements against the
reference solution's, and `finish_grading` writes the final result once and sends `submission_graded` inside
that transaction. `requeue_stale` re-enqueues what the broker lost or whose worker died.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config import clock, metrics
from grading.challenges import ChallengeNotFound, current_challenges, get_challenge
from grading.judging import ChecksError, CheckSuite, beyond_starter, load_suite
from grading.models import CodeSubmission
from grading.signals import submission_graded

log = logging.getLogger(__name__)
Status = CodeSubmission.Status
# PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot hold a lone surrogate (what a JSON "\ud800" escape
# decodes to); jsonb has no NaN or infinity either: one of them in a result would make every attempt to write it fail.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


# --- submitting ---------------------------------------------------------------------------------------------------


def check_code(code: Any) -> str:
    """The one validation of submitted code (quizzes' answers, `grade_file`, this module): returns it unchanged.

    Raises ValidationError for empty or oversized code, or a character no database text can hold (NUL, a lone
    surrogate), which would otherwise fail later as a 500 or a submission that can never be stored.
    """
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("The code is empty.")
    if _UNSTORABLE.search(code):
        raise ValidationError("The code contains a NUL or another character that is not text.")
    limit = settings.GRADING_CODE_LIMIT_BYTES
    if len(code.encode("utf-8")) > limit:
        raise ValidationError(f"The code is larger than {limit // 1024} KiB.")
    return code


def submit_code(
    *, challenge_slug: str, code: str, challenge_version: str | None = None, lti_user: Any = None
) -> CodeSubmission:
    """Store a submission and queue its grading on the `gpu` queue once the transaction commits.

    Raises ValidationError (the caller answers 4xx) for code `check_code` refuses or an unknown challenge.
    """
    check_code(code)
    if not isinstance(challenge_slug, str) or len(challenge_slug) > 100:
        raise ValidationError("Unknown code challenge.")
    try:
        spec = get_challenge(challenge_slug, challenge_version)
    except ChallengeNotFound as exc:
        raise ValidationError(f"Unknown code challenge {challenge_slug!r}.") from exc
    with transaction.atomic():
        submission = CodeSubmission.objects.create(
            challenge_slug=spec.slug, challenge_version=spec.version, code=code, lti_user=lti_user
        )
        transaction.on_commit(lambda: enqueue(submission.pk))
    return submission


def enqueue(submission_id: Any) -> None:
    """Send the grading task to the broker (the database row already exists: the broker may lose it, we won't)."""
    from grading.tasks import grade_submission

    try:
        grade_submission.apply_async(args=[str(submission_id)], queue="gpu")
    except Exception:  # noqa: BLE001 - the broker is down: the sweeper re-enqueues from the database
        log.exception("could not enqueue grading of %s; the sweeper will retry", submission_id)


# --- grading ------------------------------------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{__import__('os').getpid()}"[:255]


def begin_grading(submission_id: Any, *, worker: str = "") -> CodeSubmission | None:
    """Mark a submission running for this delivery; None when it is final already (a repeated delivery) or gone."""
    with transaction.atomic():
        submission = CodeSubmission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None or submission.is_final:
            return None
        submission.status = Status.RUNNING
        submission.started_at = timezone.now()
        submission.deliveries += 1
        submission.worker = worker or worker_name()
        submission.save(update_fields=["status", "started_at", "deliveries", "worker"])
        return submission


def storable(value: Any) -> Any:
    """Text, or JSON made of lists and dicts, with each character no database text can hold replaced by U+FFFD
    (and each non-finite number by None).

    Everything that comes out of the sandbox (messages, exception types, check feedback, artifacts) passes here
    before it is saved, so the student gets the real outcome instead of a result that can never be written.
    """
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finish_grading(
    submission_id: Any,
    *,
    status: str,
    checks: list[dict[str, Any]] | None = None,
    score: float | None = None,
    max_score: float | None = None,
    feedback: str = "",
    artifacts: dict[str, Any] | None = None,
    device: str = "",
) -> bool:
    """Write the final result once (graded/failed) and send `submission_graded` in the same transaction.

    Returns False (and changes nothing) when another delivery already finished it.
    """
    if status not in {Status.GRADED, Status.FAILED}:
        raise ValueError(f"not a final status: {status}")
    with transaction.atomic():
        submission = CodeSubmission.objects.select_for_update().get(pk=submission_id)
        if submission.is_final:
            return False
        now = timezone.now()
        submission.status = status
        submission.checks = storable(checks or [])
        submission.score = score
        submission.max_score = max_score
        submission.feedback = storable(feedback[:4000])
        submission.artifacts = storable(artifacts or {})
        submission.device = storable(device[:32])
        submission.finished_at = now
        if submission.started_at is None:
            submission.started_at = now
        submission.save()
        submission_graded.send(sender=CodeSubmission, submission=submission)
        transaction.on_commit(lambda: _observe(status, (now - submission.queued_at).total_seconds()))
    return True


def _observe(status: str, latency_s: float) -> None:
    metrics.GRADINGS.labels(status=status).inc()
    metrics.GRADING_LATENCY.observe(max(0.0, latency_s))


def mark_error(submission_id: Any, message: str) -> None:
    """Our fault (sandbox unavailable, broken checks): not final, not the student's; the sweeper retries it later."""
    with transaction.atomic():
        submission = CodeSubmission.objects.select_for_update().get(pk=submission_id)
        if submission.is_final:
            return
        submission.status = Status.ERROR
        submission.feedback = storable(message[:4000])
        submission.save(update_fields=["status", "feedback"])
    metrics.GRADINGS.labels(status=Status.ERROR).inc()
    log.error("grading of %s could not run: %s", submission_id, message)


_reference_cache: dict[tuple[str, ...], tuple[str, Any]] = {}
_reference_lock = threading.Lock()


def _trusted_outcome(spec: Any, suite: CheckSuite, pool: Any, *, kind: str, source: str) -> tuple[str, Any]:
    """(status, measurements) of code the challenge itself hands out (its reference solution, its starter code): one
    sandbox run per worker and challenge version, cached. A sandbox fault (ours) is raised, never cached."""
    device = pool._config().device
    key = (kind, spec.slug, spec.version, suite.digest, device)
    with _reference_lock:
        if key in _reference_cache:
            return _reference_cache[key]
        sandbox = pool.lease()
        try:
            outcome = sandbox.run(source, suite.probe_source, timeout_s=max(spec.timeout_s, 60.0))
        finally:
            pool.returned()
        if outcome.status == "error":
            raise ChecksError(f"the {kind} code of {spec.slug} could not run in the sandbox: {outcome.reason}")
        _reference_cache[key] = (outcome.status, outcome.measurements if outcome.status == "ok" else outcome.reason)
        return _reference_cache[key]


def reference_measurements(spec: Any, suite: CheckSuite, pool: Any) -> Any:
    """The reference solution's measurements for this challenge version (one sandbox run per worker, cached).

    They never enter a student's sandbox: they live in this (trusted) worker process only.
    """
    if not suite.needs_reference:
        return None
    if not spec.solution_source.strip():
        raise ChecksError(f"challenge {spec.slug} has no reference solution")
    status, measurements = _trusted_outcome(spec, suite, pool, kind="reference", source=spec.solution_source)
    if status != "ok":
        raise ChecksError(f"the reference solution of {spec.slug} failed in the sandbox: {measurements}")
    return measurements


def starter_checks(spec: Any, suite: CheckSuite, pool: Any, reference: Any) -> list[dict[str, Any]] | None:
    """The challenge's own starter code judged like a submission (None: it has none, or it fails outright): what it
    already passes is what no submission earns points for (judging.beyond_starter)."""
    starter = getattr(spec, "starter_code", "") or ""
    if not starter.strip():
        return None
    status, measurements = _trusted_outcome(spec, suite, pool, kind="starter", source=starter)
    return suite.judge(measurements, reference) if status == "ok" else None


def current_warmups() -> list[dict[str, str]]:
    """The current challenges' probes with their warm-up stand-ins (WARMUP_SOURCE in checks.py), for the pool."""
    try:
        warmups = []
        for spec in current_challenges():
            if not spec.checks_source:
                continue
            suite = load_suite(spec.checks_source)
            standin = suite.namespace.get("WARMUP_SOURCE")
            if standin:
                warmups.append({"code": standin, "probe": suite.probe_source})
        return warmups
    except Exception:  # noqa: BLE001 - no database or content yet: the generic warm-up still runs
        log.warning("no challenge warm-ups for the grading pool", exc_info=True)
        return []


_specs: dict[tuple[str, str], Any] = {}


def _spec(slug: str, version: str) -> Any:
    """A challenge version's spec (immutable: a stored version never changes), cached per worker process."""
    key = (slug, version)
    if key not in _specs:
        _specs[key] = get_challenge(slug, version)
    return _specs[key]


def _score(checks: list[dict[str, Any]], points: float) -> float:
    max_points = sum(c["max_points"] for c in checks) or 1.0
    return round(points * sum(c["points"] for c in checks) / max_points, 4)


def _summary(checks: list[dict[str, Any]]) -> str:
    passed = sum(1 for c in checks if c["passed"])
    summary = f"{passed} of {len(checks)} checks passed."
    free = sum(1 for c in checks if c["passed"] and c.get("starter_points") and c["max_points"] == 0)
    if free:
        summary += (f" {free} of them the starter code already passes: they earn nothing, your points come from the "
                    "checks it fails.")
    return summary


def grade_submission_now(submission_id: Any, *, pool: Any = None, worker: str = "") -> CodeSubmission | None:
    """Grade one submission here and now (the Celery task and `grade_file` call this). Idempotent by id."""
    from grading.pool import get_pool
    from grading.sandbox import SandboxConfig, SandboxError, SandboxUnavailable, check_available

    try:
        check_available(SandboxConfig.from_settings())
    except SandboxUnavailable as exc:
        # Refuse to grade, fail closed. Not a delivery: the sweeper retries until the sandbox is back.
        if not CodeSubmission.objects.filter(pk=submission_id).exists():
            return None
        mark_error(submission_id, f"Grading is unavailable right now ({exc}). Your code was kept and will be "
                   "graded when it is back.")
        return CodeSubmission.objects.get(pk=submission_id)
    submission = begin_grading(submission_id, worker=worker)
    if submission is None:
        return None
    try:
        spec = _spec(submission.challenge_slug, submission.challenge_version)
        if not spec.checks_source.strip():
            raise ChecksError(f"challenge {spec.slug} has no hidden checks")
        suite = load_suite(spec.checks_source)
        pool = pool or get_pool()
        reference = reference_measurements(spec, suite, pool)
        baseline = starter_checks(spec, suite, pool, reference)
        sandbox = pool.lease()
        try:
            # The challenge's own limit, capped by the operator's GRADING_TIMEOUT_S.
            timeout_s = min(spec.timeout_s or settings.GRADING_TIMEOUT_S, settings.GRADING_TIMEOUT_S)
            outcome = sandbox.run(submission.code, suite.probe_source, timeout_s=timeout_s)
        finally:
            pool.returned()
    except (SandboxUnavailable, SandboxError, ChecksError, ChallengeNotFound, OSError) as exc:
        mark_error(submission.pk, f"Grading could not run ({exc}). Your code was kept; it will be graded again.")
        return CodeSubmission.objects.get(pk=submission.pk)

    max_score = spec.points
    if outcome.status == "error":
        mark_error(submission.pk, outcome.reason)
        return CodeSubmission.objects.get(pk=submission.pk)
    if outcome.status == "ok":
        try:
            checks = beyond_starter(suite.judge(outcome.measurements, reference), baseline)
        except ChecksError as exc:
            mark_error(submission.pk, f"Grading is unavailable right now ({exc}).")
            return CodeSubmission.objects.get(pk=submission.pk)
        score = _score(checks, max_score)
        finish_grading(
            submission.pk, status=Status.GRADED, checks=checks, score=score, max_score=max_score,
            feedback=_summary(checks), artifacts=suite.artifacts(outcome.measurements), device=outcome_device(pool),
        )
    else:
        checks = beyond_starter([
            {"name": title, "passed": False, "points": 0.0, "max_points": float(weight), "feedback": outcome.reason}
            for _key, title, weight in suite.namespace["CHECKS"]
        ], baseline)
        finish_grading(
            submission.pk, status=Status.FAILED, checks=checks, score=0.0, max_score=max_score,
            feedback=outcome.reason, device=outcome_device(pool),
        )
    return CodeSubmission.objects.get(pk=submission.pk)


def outcome_device(pool: Any) -> str:
    try:
        return pool._config().device
    except Exception:  # noqa: BLE001
        return ""


# --- the sweeper --------------------------------------------------------------------------------------------------


def requeue_stale(*, queued_after_s: float | None = None, limit: int = 200) -> list[str]:
    """Re-enqueue submissions the broker lost or whose worker died; returns their ids.

    - queued (or error: our fault) for longer than GRADING_REQUEUE_AFTER_S;
    - running for longer than the longest a grading can take (sandbox timeout + warm-up + margin): its worker is
      gone (a live worker's sandbox is killed at the timeout, so it cannot still be running).
    A re-enqueued submission that a live worker finishes first is a no-op on the second delivery.
    """
    now = clock.now()
    queued_after = settings.GRADING_REQUEUE_AFTER_S if queued_after_s is None else queued_after_s
    running_after = settings.GRADING_TIMEOUT_S * 2 + 300 if queued_after_s is None else queued_after_s
    stale = CodeSubmission.objects.filter(
        Q(status__in=[Status.QUEUED, Status.ERROR], queued_at__lt=now - timedelta(seconds=queued_after))
        | Q(status=Status.RUNNING, started_at__lt=now - timedelta(seconds=running_after))
    )
    max_deliveries = settings.GRADING_MAX_DELIVERIES
    # Started again and again and never finished: its workers died each time. Give up with a clear reason.
    for pk in stale.filter(status=Status.RUNNING, deliveries__gte=max_deliveries).values_list("pk", flat=True)[:limit]:
        finish_grading(pk, status=Status.FAILED, score=0.0, feedback=(
            f"Grading stopped {max_deliveries} times without a result (the process running it died each time); "
            "the submission was not graded."))
    ids = [str(pk) for pk in stale.filter(deliveries__lt=max_deliveries).order_by("queued_at")
           .values_list("pk", flat=True)[:limit]]
    for pk in ids:
        enqueue(pk)
    if ids:
        log.info("re-enqueued %d stale submissions", len(ids))
    return ids
