"""The instructor's gradebook sync page for one placement: who is delivered, waiting or refused, and two repairs."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from lti_tool.gradebook import ags, nrps, services
from lti_tool.models import LtiUser, Membership, ResourceLink
from lti_tool.sessions import LaunchInfo, launch_required

STATE_LABELS = {
    "delivered": "Delivered",
    "waiting": "Waiting",
    "refused": "Refused",
    "kept": "Teacher's grade kept",
    "not_started": "Not started",
}
ACTIONS = {"resend", "sync_roster"}


@require_http_methods(["GET", "POST"])
@launch_required
def gradebook_status(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    """GET: per-student sync state. POST action=resend: send all grades again; action=sync_roster: NRPS sync."""
    if not launch.is_staff:
        return render(
            request,
            "lti_tool/no_launch.html",
            {"reason": "Only the course's instructors can see the gradebook sync page."},
            status=403,
        )
    resource_link = get_object_or_404(
        ResourceLink.objects.select_related("context__deployment__registration"), pk=resource_link_pk
    )
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            return render(request, "lti_tool/no_launch.html", {"reason": "Unknown action."}, status=400)
        if action == "resend":
            count = services.resend_all(resource_link)
            messages.success(request, f"{count} grade{'s' if count != 1 else ''} queued to be sent again.")
        else:
            try:
                count = services.sync_roster(resource_link.context)
            except ags.ServiceError as exc:
                messages.error(request, f"The roster could not be read: {exc.detail}")
            else:
                messages.success(request, f"Roster synced: {count} member{'s' if count != 1 else ''}.")
        return redirect("lti_tool:gradebook_status", resource_link_pk=resource_link.pk, permanent=False)
    return render(request, "gradebook/status.html", _page(resource_link))


def _page(resource_link: ResourceLink) -> dict:
    status = services.sync_status(resource_link)
    learner_pks = set(
        Membership.objects.filter(context=resource_link.context, is_learner=True).values_list("lti_user_id", flat=True)
    )
    users = LtiUser.objects.filter(pk__in=set(status) | learner_pks)
    rows = []
    for user in users:
        entry = status.get(user.pk)
        state = entry["state"] if entry else "not_started"
        rows.append(
            {
                "name": user.display_name,
                "state": state,
                "label": STATE_LABELS[state],
                "score": entry["score"] if entry else None,
                "score_maximum": entry["score_maximum"] if entry else None,
                "detail": entry["detail"] if entry else "Has not submitted anything yet.",
            }
        )
    order = {"refused": 0, "kept": 1, "waiting": 2, "delivered": 3, "not_started": 4}
    rows.sort(key=lambda r: (order[r["state"]], r["name"].lower()))
    counts = {key: sum(1 for r in rows if r["state"] == key) for key in STATE_LABELS}
    return {
        "resource_link": resource_link,
        "rows": rows,
        "counts": counts,
        "labels": STATE_LABELS,
        "has_roster_service": bool(resource_link.context.memberships_url),
        "roster_notice": nrps.truncated_notice(resource_link.context),
    }
