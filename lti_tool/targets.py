"""Where a validated launch sends the browser: pages of the app serving the activity, which registers their URL names
in its AppConfig.ready(), so lti_tool never imports it nor knows its paths.

Each name is reversed with these keyword arguments:
- resource_link: `resource_link_pk` (a resource-link launch, after it is remembered in the session);
- deep_link: `launch_id` (the deep-linking request kept by `services.remember_deep_link`);
- submission_review: `resource_link_pk`, `lti_user_pk` (the student whose work is reviewed).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse


@dataclass(frozen=True)
class LaunchTargets:
    resource_link: str
    deep_link: str
    submission_review: str


_registered: LaunchTargets | None = None


def register(*, resource_link: str, deep_link: str, submission_review: str) -> None:
    global _registered
    _registered = LaunchTargets(resource_link, deep_link, submission_review)


def url(kind: str, **kwargs: object) -> str:
    """The page for a launch of this kind ("resource_link", "deep_link" or "submission_review")."""
    if _registered is None:
        raise ImproperlyConfigured("No app registered the launch targets (lti_tool.targets.register in its ready())")
    return reverse(getattr(_registered, kind), kwargs=kwargs)
