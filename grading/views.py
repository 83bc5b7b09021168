"""The live status of a code submission, as JSON (the player polls it while the code is graded)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from grading import challenges
from grading.models import CodeSubmission


def status_payload(submission: CodeSubmission, *, held_back: bool = False) -> dict[str, Any]:
    """What the player shows: status, score, per-check feedback, artifacts and the per-phase timestamps.

    `held_back`: the student may not see the result yet; only the progress is reported.
    """

    def iso(dt: Any) -> str | None:
        return dt.isoformat() if dt else None

    final = submission.is_final
    payload = {
        "id": str(submission.pk),
        "challenge": submission.challenge_slug,
        "status": submission.status,
        "final": final,
        "score": submission.score if final else None,
        "max_score": submission.max_score if final else None,
        "feedback": submission.feedback,
        "checks": [
            {k: c.get(k) for k in ("name", "passed", "points", "max_points", "feedback")} for c in submission.checks
        ] if final else [],
        "artifacts": submission.artifacts if final else {},
        "queued_at": iso(submission.queued_at),
        "started_at": iso(submission.started_at),
        "finished_at": iso(submission.finished_at),
    }
    if held_back:
        # The student learns that the code was received and graded, nothing about how it did.
        payload.update(
            status="graded" if final else submission.status,
            held_back=True,
            score=None,
            max_score=None,
            feedback="Your code was received. Results are shown once the exam closes." if final else "",
            checks=[],
            artifacts={},
        )
    return payload


@require_GET
@never_cache
def status(request: HttpRequest, submission_id: Any) -> JsonResponse:
    """GET /grading/submissions/<uuid>/status.json: 404 unless the owner or staff asks.

    Django staff see any submission; everyone else what the app that made it allows (`grading.challenges.access`).
    """
    submission = CodeSubmission.objects.filter(pk=submission_id).first()
    if submission is None:
        raise Http404("No such submission.")
    user = getattr(request, "user", None)
    access = "full" if user is not None and user.is_authenticated and user.is_staff else None
    access = access or challenges.access(request, submission)
    if access is None:
        raise Http404("No such submission.")
    return JsonResponse(status_payload(submission, held_back=access == "progress"))
