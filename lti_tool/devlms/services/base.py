"""The development LMS's constants (scopes, roles, limits), its refusals (`PlatformError`) and URLs (`Platform`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from lti_tool.devlms.models import Course, LineItem, Style, Tool

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE]
SUPPORTED_SCOPES = [*AGS_SCOPES, SCOPE_NRPS]
ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_STUDENT_INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"
ROLE_FACULTY_INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"
# Canvas's institution roles (lib/lti/substitutions_helper.rb, LIS_V2_LTI_ADVANTAGE_ROLE_MAP), added to every launch.
ROLE_TEACHER_INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
ROLE_SYSTEM_USER = "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"
# A launch from Canvas's Course Navigation menu: link id = the course's own id, no line item
# (lib/lti/messages/resource_link_request.rb). Pass it as the resource link slug.
COURSE_NAV_LINK = "course-nav"
CANVAS_PLACEMENT_CLAIM = "https://www.instructure.com/placement"
MESSAGE_TYPES = ["LtiResourceLinkRequest", "LtiDeepLinkingRequest", "LtiSubmissionReviewRequest"]
ACTIVITY_PROGRESS = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING_PROGRESS = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
ACCESS_TOKEN_LIFE_S = 3600
ID_TOKEN_LIFE_S = 300
HINT_MAX_AGE_S = 600
DEFAULT_PAGE_SIZE = 3
# Canvas's NRPS pages 10 members unless `limit` asks for more, and never more than 100 (Api::PER_PAGE, MAX_PER_PAGE).
CANVAS_PER_PAGE = 10
CANVAS_MAX_PER_PAGE = 100
MAX_PAGE_SIZE = 1000
HINT_SALT = "devlms.message-hint"
DL_DATA_SALT = "devlms.deep-link-data"
STUDENTS = [
    ("student1", "Ada", "Lovelace"),
    ("student2", "Alan", "Turing"),
    ("student3", "Grace", "Hopper"),
    ("student4", "Kurt", "Goedel"),
    ("student5", "Emmy", "Noether"),
]
INSTRUCTORS = [("instructor1", "Kaiming", "He")]


class PlatformError(Exception):
    """A refusal the platform answers with `status` and a human-readable `message`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str = "",
        headers: dict[str, str] | None = None,
        in_status_line: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.headers = headers or {}
        # Moodle 4.5's AGS endpoints answer a body of `[]` and put the message in the HTTP status line.
        self.in_status_line = in_status_line


@dataclass(frozen=True)
class Platform:
    """The platform as seen from one origin (scheme://host[:port]); issuer = origin + "/devlms"."""

    origin: str

    @classmethod
    def for_request(cls, request: Any) -> Platform:
        return cls(f"{request.scheme}://{request.get_host()}")

    @property
    def issuer(self) -> str:
        return self.origin + reverse("devlms:home").rstrip("/")

    def url(self, name: str, query: dict[str, Any] | None = None, **kwargs: Any) -> str:
        url = self.origin + reverse(f"devlms:{name}", kwargs=kwargs or None)
        return f"{url}?{urlencode(query)}" if query else url

    @property
    def token_url(self) -> str:
        return self.url("token")

    def lineitems_url(self, course: Course, tool: Tool) -> str:
        return self.url("lineitems", self._type_query(course, tool), course_pk=course.pk)

    def lineitem_url(self, item: LineItem, tool: Tool) -> str:
        return self.url("lineitem", self._type_query(item.course, tool), course_pk=item.course_id, pk=item.pk)

    def memberships_url(self, course: Course, tool: Tool) -> str:
        return self.url("memberships", course_pk=course.pk, tool_pk=tool.pk)

    @staticmethod
    def _type_query(course: Course, tool: Tool) -> dict[str, Any] | None:
        # Moodle puts the tool type id in the query string of every service URL.
        return {"type_id": tool.pk} if course_style(course, tool) == Style.MOODLE else None


def course_style(course: Course, tool: Tool | None) -> str:
    """The LMS behaviour this course mimics: its own style, else the tool's, else Canvas."""
    return course.style or (tool.style if tool else Style.CANVAS)


def positive_number(value: Any) -> bool:
    """A JSON number usable as a score maximum (booleans are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value < 1e9
