"""What a validated launch leaves behind for the rest of the tool: the seam other apps use.

The launch view stores one `LaunchInfo` per resource link in the Django session, so two tabs launched from two
different links do not overwrite each other. Views in `quizzes` call `current_launch(request, resource_link_pk)`
(or use `@launch_required`) and never look at LTI claims themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SESSION_KEY = "lti_launches"
DEEP_LINK_SESSION_KEY = "lti_deep_links"
MAX_LAUNCHES_KEPT = 20


@dataclass
class LaunchInfo:
    """The facts of one validated launch, by primary keys of `lti_tool` models."""

    launch_id: str
    message_type: str
    registration_pk: int
    deployment_pk: int
    lti_user_pk: int
    context_pk: int | None
    resource_link_pk: int | None
    roles: list[str] = field(default_factory=list)
    is_staff: bool = False
    is_learner: bool = False
    custom: dict[str, Any] = field(default_factory=dict)
    # A submission review: the `sub` of the student its signed for_user claim names. The platform vouches that this
    # student's work in the launched course is to be reviewed, even when they never launched the tool themselves
    # (Moodle sends only their user_id). Kept with the launch, so it lasts exactly as long as the launch does.
    for_user_sub: str | None = None

    @property
    def is_instructor(self) -> bool:
        return self.is_staff


def remember_launch(request: HttpRequest, info: LaunchInfo) -> None:
    """Store a resource-link launch in the session (called only by the launch view and test factories)."""
    launches = dict(request.session.get(SESSION_KEY, {}))
    launches[str(info.resource_link_pk)] = asdict(info)
    # Bound the session: keep the most recent launches only.
    while len(launches) > MAX_LAUNCHES_KEPT:
        launches.pop(next(iter(launches)))
    request.session[SESSION_KEY] = launches
    request.session.cycle_key()


def current_launch(request: HttpRequest, resource_link_pk: int) -> LaunchInfo | None:
    """The launch that opened this resource link in this browser session, or None."""
    data = request.session.get(SESSION_KEY, {}).get(str(resource_link_pk))
    return LaunchInfo(**data) if data else None


def launch_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorator for views taking `resource_link_pk`: refuses (403) unless this session launched that link.

    The view receives `launch=LaunchInfo` as a keyword argument.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, resource_link_pk: int, **kwargs: Any) -> HttpResponse:
        info = current_launch(request, resource_link_pk)
        if info is None:
            return render(
                request,
                "lti_tool/no_launch.html",
                {
                    "reason": "This page can only be opened from your course. Please launch the activity again "
                    "from your LMS (your session may have expired or your browser blocked the tool's cookies)."
                },
                status=403,
            )
        return view(request, *args, resource_link_pk=resource_link_pk, launch=info, **kwargs)

    return wrapper
