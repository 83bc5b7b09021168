"""The live status of a code submission, as JSON (the player polls it while the code is graded)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from grading.models import CodeSubmission
from lti_tool.sessions import SESSION_KEY


def _may_see(request: HttpRequest, submission: CodeSubmission) -> bool:
    """The student who owns it (a launch of theirs in this session), or staff: a Django staff user, or an
    instructor launch in this session for a course the submission's student belongs to (same platform)."""
    if getattr(request, "user", None) is not None and request.user.is_authenticated and request.user.is_staff:
        return True
    if submission.lti_user_id is None:
        return False
    launches = request.session.get(SESSION_KEY, {}).values()
    if any(launch.get("lti_user_pk") == submission.lti_user_id for launch in launches):
        return True
    staff_contexts = [launch.get("context_pk") for launch in launches if launch.get("is_staff")]
    if not staff_contexts:
        return False
    from lti_tool.models import Membership

    return Membership.objects.filter(context_id__in=staff_contexts, lti_user_id=submission.lti_user_id).exists()


def status_payload(submission: CodeSubmission) -> dict[str, Any]:
    """What the player shows: status, score, per-check feedback, artifacts and the per-phase timestamps."""

    def iso(dt: Any) -> str | None:
        return dt.isoformat() if dt else None

    final = submission.is_final
    return {
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


@require_GET
@never_cache
def status(request: HttpRequest, submission_id: Any) -> JsonResponse:
    """GET /grading/submissions/<uuid>/status.json: 404 unless the owner or staff asks."""
    submission = CodeSubmission.objects.filter(pk=submission_id).first()
    if submission is None or not _may_see(request, submission):
        raise Http404("No such submission.")
    return JsonResponse(status_payload(submission))
