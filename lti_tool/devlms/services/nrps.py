"""Names and Role Provisioning Services: the course roster, paged as Canvas or Moodle page it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from lti_tool.devlms.models import Course, Style, Tool
from lti_tool.devlms.services.base import (
    CANVAS_MAX_PER_PAGE,
    CANVAS_PER_PAGE,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    Platform,
    PlatformError,
    course_style,
)


def memberships(
    platform: Platform, tool: Tool, course_pk: int, tool_pk: int, query: Any
) -> tuple[dict[str, Any], str | None]:
    """One page of the course roster and the URL of the next page, if any."""
    course = Course.objects.filter(pk=course_pk).first()
    if course is None or tool_pk != tool.pk:
        raise PlatformError(404, "No such membership container.")
    canvas = course_style(course, tool) == Style.CANVAS
    try:
        limit = int(query.get("limit", CANVAS_PER_PAGE if canvas else DEFAULT_PAGE_SIZE))
        page = int(query.get("page", 1))
    except ValueError:
        raise PlatformError(400, "limit and page must be integers.")
    if not 1 <= limit <= MAX_PAGE_SIZE or not 1 <= page <= 100_000:
        raise PlatformError(400, f"limit must be 1..{MAX_PAGE_SIZE} and page >= 1.")
    if canvas:
        limit = min(limit, CANVAS_MAX_PER_PAGE)  # Canvas caps per_page silently (Api.per_page_for)
    enrollments = course.enrollments.active().select_related("person").order_by("pk")
    role = query.get("role", "")
    if role:
        want_instructor = role.endswith("Instructor")
        if not (want_instructor or role.endswith("Learner")):
            raise PlatformError(400, "role must be a Learner or Instructor role.")
        enrollments = enrollments.filter(is_instructor=want_instructor)
    start = (page - 1) * limit
    rows = list(enrollments[start : start + limit + 1])
    # Moodle 4.5 names roles by their short names in NRPS ("Learner"), by full URIs in launches.
    short_roles = course_style(course, tool) == Style.MOODLE
    members = [
        {
            "status": "Active",
            "user_id": e.person.sub,
            "name": e.person.name,
            "given_name": e.person.given_name,
            "family_name": e.person.family_name,
            "email": e.person.email,
            "roles": [_nrps_role(ROLE_INSTRUCTOR if e.is_instructor else ROLE_LEARNER, short_roles)],
        }
        for e in rows[:limit]
    ]
    base = platform.memberships_url(course, tool)
    next_query = {"limit": limit, "page": page + 1}
    if role:
        next_query["role"] = role
    next_url = f"{base}?{urlencode(next_query)}" if len(rows) > limit else None
    container = {
        "id": f"{base}?{urlencode({'limit': limit, 'page': page})}",
        "context": {"id": f"devlms-{course.slug}", "label": course.label, "title": course.title},
        "members": members,
    }
    return container, next_url


def _nrps_role(uri: str, short: bool) -> str:
    return uri.rpartition("#")[2] if short else uri
