"""The live status of a code submission, as JSON (the player polls it while the code is graded)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from grading.models import CodeSubmission
from lti_tool.sessions import SESSION_KEY


def _viewer(request: HttpRequest, submission: CodeSubmission) -> str | None:
    """"staff" (a Django staff user, or an instructor launch in this session for the course the submission was made
    in: a quiz answer's course, else any course its student belongs to), "owner" (the student, through a launch of
    theirs in this session), or None."""
    if getattr(request, "user", None) is not None and request.user.is_authenticated and request.user.is_staff:
        return "staff"
    if submission.lti_user_id is None:
        return None
    launches = list(request.session.get(SESSION_KEY, {}).values())
    staff_contexts = [launch.get("context_pk") for launch in launches if launch.get("is_staff")]
    if staff_contexts:
        from lti_tool.models import Membership

        # A student in two courses of one registration: a quiz answer is for the staff of its own course only.
        course = CodeSubmission.objects.filter(pk=submission.pk).values_list(
            "quiz_answer__state__attempt__placement__resource_link__context_id", flat=True
        ).first()
        if course is not None:
            if course in staff_contexts:
                return "staff"
        elif Membership.objects.filter(context_id__in=staff_contexts, lti_user_id=submission.lti_user_id).exists():
            return "staff"
    if any(launch.get("lti_user_pk") == submission.lti_user_id for launch in launches):
        return "owner"
    return None


def _result_held_back(submission: CodeSubmission) -> bool:
    """Whether the student may not see the result yet (an exam shows results only once the attempt closed)."""
    answer = getattr(submission, "quiz_answer", None)
    if answer is None:
        return False
    from quizzes.queries import feedback_visible  # the quiz's rules decide what a student may see

    return not feedback_visible(answer.state.attempt)


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
    """GET /grading/submissions/<uuid>/status.json: 404 unless the owner or staff asks."""
    submission = CodeSubmission.objects.filter(pk=submission_id).first()
    viewer = _viewer(request, submission) if submission is not None else None
    if viewer is None:
        raise Http404("No such submission.")
    held_back = viewer == "owner" and _result_held_back(submission)
    return JsonResponse(status_payload(submission, held_back=held_back))
