"""What a validated launch leaves behind for the rest of the tool: all that other apps see of a launch.

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

from lti_tool.models import Context, Deployment, LtiUser, Registration

SESSION_KEY = "lti_launches"
DEEP_LINK_SESSION_KEY = "lti_deep_links"
MAX_LAUNCHES_KEPT = 20
MAX_DEEP_LINKS_KEPT = 10


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


@dataclass
class DeepLinkLaunch(LaunchInfo):
    """A deep-linking launch: its facts and the platform's deep-linking settings, kept until the response is sent.

    The rows it names are read once, on first use, by whoever needs them (the placement form, the signed response).
    """

    may_configure: bool = False  # lti_tool.roles: course designers may add the activity without being staff
    return_url: str = ""
    data: Any = None  # the platform's opaque `data`, echoed back unchanged
    accept_types: list[str] = field(default_factory=list)
    accept_multiple: bool = False
    title: str = ""
    text: str = ""

    @functools.cached_property
    def registration(self) -> Registration | None:
        return Registration.objects.filter(pk=self.registration_pk).first()

    @functools.cached_property
    def deployment(self) -> Deployment | None:
        return Deployment.objects.filter(pk=self.deployment_pk, registration_id=self.registration_pk).first()

    @functools.cached_property
    def context(self) -> Context | None:
        return Context.objects.filter(pk=self.context_pk).first() if self.context_pk else None

    @functools.cached_property
    def lti_user(self) -> LtiUser | None:
        return LtiUser.objects.filter(pk=self.lti_user_pk).first()


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


def remember_deep_link(request: HttpRequest, deep_link: DeepLinkLaunch) -> None:
    """Store a deep-linking launch in the session until its response is sent (bounded like resource-link launches)."""
    links = dict(request.session.get(DEEP_LINK_SESSION_KEY, {}))
    links[deep_link.launch_id] = asdict(deep_link)
    while len(links) > MAX_DEEP_LINKS_KEPT:
        links.pop(next(iter(links)))
    request.session[DEEP_LINK_SESSION_KEY] = links
    request.session.cycle_key()


def current_deep_link(request: HttpRequest, launch_id: str) -> DeepLinkLaunch | None:
    """The deep-linking launch `launch_id` of this browser session, or None (unknown, expired or already answered)."""
    data = request.session.get(DEEP_LINK_SESSION_KEY, {}).get(launch_id)
    try:
        return DeepLinkLaunch(**data) if data else None
    except TypeError:  # kept by an older version of the tool across a deployment: start again from the course
        return None


def forget_deep_link(request: HttpRequest, launch_id: str) -> None:
    """Drop a deep-linking launch once answered: one response per deep-linking request."""
    links = dict(request.session.get(DEEP_LINK_SESSION_KEY, {}))
    links.pop(launch_id, None)
    request.session[DEEP_LINK_SESSION_KEY] = links


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
