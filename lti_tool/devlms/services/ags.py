"""What the development LMS does, as plain functions (registration, launches, tokens, AGS, NRPS, faults).

Every function that answers the tool raises `PlatformError(status, message)` for a refusal; views turn it into the
HTTP answer a real LMS would give. URLs are built from a `Platform` (the request's origin), because the issuer is
"<base URL>/devlms" wherever the server runs.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from lti_tool.devlms import jose
from lti_tool.devlms.models import (
    AccessToken,
    Course,
    Enrollment,
    Fault,
    LineItem,
    Person,
    RegistrationToken,
    ResourceLink,
    Score,
    ScoreEvent,
    Style,
    Tool,
    UsedJti,
)
from lti_tool.http import has_nul

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


# --- Seed data ----------------------------------------------------------------------------------------------------


def ensure_seed() -> None:
    """Create the default people, courses and links if missing (idempotent; cheap when already there)."""
    if Course.objects.filter(slug="course1").exists():
        return
    try:
        with transaction.atomic():
            people = [ensure_person(username) for username, _, _ in STUDENTS + INSTRUCTORS]
            for slug, title, label in [("course1", "Deep Learning 101", "DL101"), ("course2", "Vision 201", "CV201")]:
                course = Course.objects.create(slug=slug, title=title, label=label)
                for person in people:
                    Enrollment.objects.create(course=course, person=person, is_instructor=person.is_instructor)
                add_resource_link(
                    course,
                    slug="link1",
                    title="ResNet challenges",
                    line_item={"label": "ResNet challenges", "scoreMaximum": 100.0, "resourceId": "resnet"},
                )
                add_resource_link(course, slug="link2", title="ResNet challenges (no gradebook column)")
    except IntegrityError:
        pass  # another request seeded concurrently


def ensure_person(username: str) -> Person:
    """The person called `username`, created on demand (names starting with "instructor" are instructors)."""
    person = Person.objects.filter(username=username).first()
    if person:
        return person
    known = {u: (g, f) for u, g, f in STUDENTS + INSTRUCTORS}
    given, family = known.get(username, (username.capitalize(), "Example"))
    try:
        with transaction.atomic():
            return Person.objects.create(
                username=username,
                sub=secrets.token_hex(12),
                given_name=given,
                family_name=family,
                email=f"{username}@devlms.example.edu",
                is_instructor=username.startswith("instructor"),
            )
    except IntegrityError:
        return Person.objects.get(username=username)  # created concurrently by another request


def get_course(slug: str) -> Course:
    ensure_seed()
    try:
        return Course.objects.get(slug=slug)
    except Course.DoesNotExist:
        raise PlatformError(404, f"No course {slug!r}.")


def get_link(course: Course, slug: str) -> ResourceLink:
    try:
        return ResourceLink.objects.select_related("line_item").get(course=course, slug=slug)
    except ResourceLink.DoesNotExist:
        raise PlatformError(404, f"No resource link {slug!r} in {course.slug}.")


def ensure_enrollment(course: Course, person: Person) -> Enrollment:
    """Enroll `person` in `course` (with their default role) unless already enrolled."""
    enrollment, _ = Enrollment.objects.get_or_create(
        course=course, person=person, defaults={"is_instructor": person.is_instructor}
    )
    return enrollment


def add_resource_link(
    course: Course,
    *,
    slug: str | None = None,
    title: str,
    custom: dict[str, str] | None = None,
    line_item: dict[str, Any] | None = None,
    tool: Tool | None = None,
) -> ResourceLink:
    """Place a link in `course`, optionally with a coupled gradebook column (AGS lineItem fields)."""
    with transaction.atomic():
        if slug is None:
            n = course.resource_links.count() + 1
            while course.resource_links.filter(slug=f"link{n}").exists():
                n += 1
            slug = f"link{n}"
        link = ResourceLink.objects.create(
            course=course, slug=slug, link_id=secrets.token_hex(10), title=title[:200], custom=custom or {}
        )
        if line_item is not None:
            item = LineItem.objects.create(
                course=course,
                resource_link=link,
                tool=tool,
                label=str(line_item.get("label") or title)[:200],
                score_maximum=float(line_item.get("scoreMaximum", 100.0)),
                resource_id=str(line_item.get("resourceId", ""))[:200],
                tag=str(line_item.get("tag", ""))[:200],
            )
            link.line_item = item
            link.save(update_fields=["line_item"])
        return link


def current_tool() -> Tool | None:
    """The tool launches go to: the newest active, installed one."""
    return Tool.objects.active().exclude(deployment_id="").order_by("-created_at", "-pk").first()


# --- Dynamic Registration ------------------------------------------------------------------------------------------


def start_registration(style: str = Style.CANVAS, granted_scopes: list[str] | None = None) -> RegistrationToken:
    """An admin starts registering a tool: a one-time registration token (valid 1 hour)."""
    if style not in Style.values:
        raise PlatformError(400, f"style must be one of {Style.values}")
    return RegistrationToken.objects.create(
        token=secrets.token_urlsafe(32),
        style=style,
        granted_scopes=" ".join(granted_scopes or []),
        expires_at=timezone.now() + timedelta(hours=1),
    )


def openid_configuration(platform: Platform, style: str = "") -> dict[str, Any]:
    """The platform's OpenID configuration (Dynamic Registration step 2)."""
    return {
        "issuer": platform.issuer,
        "authorization_endpoint": platform.url("auth"),
        "token_endpoint": platform.token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "jwks_uri": platform.url("jwks"),
        "registration_endpoint": platform.url("registration"),
        "scopes_supported": ["openid", *SUPPORTED_SCOPES],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "aud", "sub", "name", "given_name", "family_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "devlms",
            "version": "1.0",
            "messages_supported": [
                {"type": "LtiResourceLinkRequest"},
                {"type": "LtiDeepLinkingRequest", "placements": ["assignment_selection", "link_selection"]},
                {"type": "LtiSubmissionReviewRequest"},
            ],
            "variables": ["Context.id", "ResourceLink.id", "User.id"],
            "devlms_style": style,
        },
    }


def check_registration_token(token: str, *, consume: bool = False) -> RegistrationToken:
    """The pending registration token `token`, or 401."""
    row = RegistrationToken.objects.filter(token=token).first() if token else None
    if row is None or row.expires_at < timezone.now():
        raise PlatformError(401, "Unknown or expired registration token.", error="invalid_token")
    if row.used_at is not None:
        # Moodle's registration tokens are single use.
        raise PlatformError(401, "token_already_used", error="invalid_token")
    if consume:
        updated = RegistrationToken.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=timezone.now())
        if not updated:
            raise PlatformError(401, "token_already_used", error="invalid_token")
    return row


def _require_https_or_local(url: Any, field: str) -> str:
    if not isinstance(url, str) or len(url) > 500:
        raise PlatformError(400, f"{field} must be a URL of at most 500 characters.", error="invalid_client_metadata")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise PlatformError(400, f"{field} is not an absolute http(s) URL.", error="invalid_client_metadata")
    return url


def register_client(platform: Platform, registration_token: str, body: Any) -> tuple[Tool, dict[str, Any]]:
    """The registration endpoint: validate the tool's client registration, store it, answer with the client_id."""
    token = check_registration_token(registration_token)
    if not isinstance(body, dict):
        raise PlatformError(400, "The body must be a JSON object.", error="invalid_client_metadata")
    config = body.get("https://purl.imsglobal.org/spec/lti-tool-configuration")
    if not isinstance(config, dict):
        raise PlatformError(400, "lti-tool-configuration is missing.", error="invalid_client_metadata")
    if body.get("application_type", "web") != "web":
        raise PlatformError(400, "application_type must be web.", error="invalid_client_metadata")
    grant_types = body.get("grant_types") or []
    if not isinstance(grant_types, list) or not {"implicit", "client_credentials"} <= set(grant_types):
        raise PlatformError(
            400, "grant_types must include implicit and client_credentials.", error="invalid_client_metadata"
        )
    if body.get("response_types") != ["id_token"]:
        raise PlatformError(400, "response_types must be ['id_token'].", error="invalid_client_metadata")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        raise PlatformError(400, "token_endpoint_auth_method must be private_key_jwt.", error="invalid_client_metadata")
    login = _require_https_or_local(body.get("initiate_login_uri"), "initiate_login_uri")
    jwks_uri = _require_https_or_local(body.get("jwks_uri"), "jwks_uri")
    redirect_uris = body.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris or len(redirect_uris) > 20:
        raise PlatformError(400, "redirect_uris must be a non-empty list.", error="invalid_redirect_uri")
    for uri in redirect_uris:
        _require_https_or_local(uri, "redirect_uris[]")
    target = _require_https_or_local(config.get("target_link_uri"), "target_link_uri")
    messages = config.get("messages") or []
    if not isinstance(messages, list):
        raise PlatformError(400, "messages must be a list.", error="invalid_client_metadata")
    deep_link_uri = ""
    for message in messages:
        if isinstance(message, dict) and message.get("type") == "LtiDeepLinkingRequest":
            deep_link_uri = _require_https_or_local(
                message.get("target_link_uri") or target, "messages[].target_link_uri"
            )
    claims = config.get("claims") or []
    if not isinstance(claims, list):
        raise PlatformError(400, "claims must be a list.", error="invalid_client_metadata")
    requested = str(body.get("scope", "")).split()
    granted = [s for s in requested if s in SUPPORTED_SCOPES]
    if token.granted_scopes:
        granted = [s for s in granted if s in token.granted_scopes.split()]
    with transaction.atomic():
        check_registration_token(registration_token, consume=True)
        client_id = (
            secrets.token_hex(8) if token.style == Style.MOODLE else str(10000000000000 + secrets.randbelow(10**9))
        )
        tool = Tool.objects.create(
            client_id=client_id,
            name=str(body.get("client_name", ""))[:200],
            style=token.style,
            initiate_login_uri=login,
            redirect_uris=redirect_uris,
            target_link_uri=target,
            deep_link_uri=deep_link_uri,
            jwks_uri=jwks_uri,
            scopes=" ".join(granted),
            issuer=platform.issuer,
            claims=[str(c) for c in claims][:50],
            registration=body,
        )
        if token.style == Style.MOODLE:
            # Moodle returns the tool type id as the deployment id; the tool stays pending until activated.
            tool.deployment_id = str(tool.pk)
            tool.save(update_fields=["deployment_id"])
    answer = dict(body)
    answer["client_id"] = tool.client_id
    answer["scope"] = tool.scopes
    answer["registration_client_uri"] = platform.url("home")
    tool_config = dict(config)
    if token.style == Style.MOODLE:
        tool_config["deployment_id"] = tool.deployment_id
    answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = tool_config
    return tool, answer


def install_tool(tool: Tool) -> Tool:
    """The admin's last step: Canvas "deploys" the key (a deployment id appears), Moodle activates the tool."""
    if not tool.deployment_id:
        tool.deployment_id = f"{tool.pk}:{secrets.token_hex(20)}"
    tool.active = True
    tool.save(update_fields=["deployment_id", "active"])
    return tool


# --- Launches -----------------------------------------------------------------------------------------------------


@dataclass
class LaunchRequest:
    """Everything a launch needs, carried through the login round trip in the signed lti_message_hint."""

    user: str
    course: str
    resource_link: str | None = None
    message_type: str = "LtiResourceLinkRequest"
    custom: dict[str, str] | None = None
    roles: list[str] | None = None
    document_target: str = "iframe"
    for_user: str | None = None
    # The frame that answers LTI postMessage storage (lti.put_data / lti.get_data), as Canvas offers; None: none.
    storage_target: str | None = None
    # The origin the user reached the LMS at, when not the platform's own: a Canvas cloud school on its own domain
    # (Canvas builds return URLs from HostUrl.context_host, so they carry this origin).
    domain: str | None = None


def login_initiation(platform: Platform, request: LaunchRequest, tool: Tool | None = None) -> tuple[str, dict]:
    """Where the platform sends the browser to start a launch: (tool login URL, query parameters)."""
    tool = tool or current_tool()
    if tool is None:
        raise PlatformError(409, "No tool is registered and installed yet: register the tool first.")
    if request.message_type not in MESSAGE_TYPES:
        raise PlatformError(400, f"message_type must be one of {MESSAGE_TYPES}")
    course = get_course(request.course)
    person = ensure_person(request.user)
    if request.message_type != "LtiDeepLinkingRequest" and request.resource_link != COURSE_NAV_LINK:
        get_link(course, request.resource_link or "link1")
    ensure_enrollment(course, person)
    if request.message_type == "LtiDeepLinkingRequest":
        target = tool.deep_link_uri or tool.target_link_uri
    else:
        target = tool.target_link_uri
    hint = signing.dumps({**request.__dict__, "tool": tool.pk}, salt=HINT_SALT, compress=True)
    params = {
        "iss": platform.issuer,
        "login_hint": person.sub,
        "target_link_uri": target,
        "lti_message_hint": hint,
        "client_id": tool.client_id,
        "lti_deployment_id": tool.deployment_id,
    }
    if request.storage_target:
        params["lti_storage_target"] = request.storage_target
    return tool.initiate_login_uri, params


def _role_uris(person: Person, course: Course, roles: list[str] | None, style: str) -> list[str]:
    if roles is not None:
        return roles
    enrollment = Enrollment.objects.filter(course=course, person=person).first()
    membership = ROLE_INSTRUCTOR if enrollment and enrollment.is_instructor else ROLE_LEARNER
    if style != Style.CANVAS:
        return [membership, ROLE_FACULTY_INST if membership == ROLE_INSTRUCTOR else ROLE_STUDENT_INST]
    # Canvas's allRoles: the course role plus the user's roles anywhere in the school (a teacher in any course is
    # an institution Instructor, a student in any an institution Student) and the system User role.
    anywhere = set(Enrollment.objects.active().filter(person=person).values_list("is_instructor", flat=True))
    institution = [ROLE_TEACHER_INST] * (True in anywhere) + [ROLE_STUDENT_INST] * (False in anywhere)
    return [membership, *institution, ROLE_SYSTEM_USER]


def launch_claims(platform: Platform, request: LaunchRequest, tool: Tool, nonce: str) -> dict[str, Any]:
    """The complete id_token claims of a launch (before signing)."""
    course = get_course(request.course)
    person = ensure_person(request.user)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": platform.issuer,
        "aud": tool.client_id,
        "azp": tool.client_id,
        "sub": person.sub,
        "iat": now,
        "exp": now + ID_TOKEN_LIFE_S,
        "nonce": nonce,
        LTI + "message_type": request.message_type,
        LTI + "version": "1.3.0",
        LTI + "deployment_id": tool.deployment_id,
        LTI + "roles": _role_uris(person, course, request.roles, course_style(course, tool)),
        LTI + "context": {
            "id": f"devlms-{course.slug}",
            "label": course.label,
            "title": course.title,
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        LTI + "tool_platform": {
            "guid": "devlms",
            "name": "Development LMS",
            "product_family_code": "devlms",
            "version": "1.0",
        },
        LTI + "launch_presentation": {
            "document_target": request.document_target,
            "return_url": (request.domain or platform.origin) + reverse("devlms:home") + f"?user={person.username}",
            "locale": "en",
        },
    }
    claims.update(
        {"name": person.name, "given_name": person.given_name, "family_name": person.family_name, "email": person.email}
    )
    scopes = tool.scope_list
    ags_scopes = [s for s in scopes if s in AGS_SCOPES]
    if SCOPE_NRPS in scopes:
        claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = {
            "context_memberships_url": platform.memberships_url(course, tool),
            "service_versions": ["2.0"],
        }
    link = None
    if request.message_type == "LtiDeepLinkingRequest":
        claims[LTI + "target_link_uri"] = tool.deep_link_uri or tool.target_link_uri
        data = signing.dumps({"course": course.slug, "user": person.username, "tool": tool.pk}, salt=DL_DATA_SALT)
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
            "deep_link_return_url": platform.url("deep_link_return"),
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
            "accept_lineitem": True,
            "auto_create": True,
            "title": "Add an activity",
            "data": data,
        }
    elif request.resource_link == COURSE_NAV_LINK:
        claims[LTI + "target_link_uri"] = tool.target_link_uri
        claims[LTI + "resource_link"] = {"id": claims[LTI + "context"]["id"], "title": course.title}
        claims[CANVAS_PLACEMENT_CLAIM] = "course_navigation"
    else:
        link = get_link(course, request.resource_link or "link1")
        claims[LTI + "target_link_uri"] = tool.target_link_uri
        claims[LTI + "resource_link"] = {"id": link.link_id, "title": link.title, "description": ""}
    custom = request.custom if request.custom is not None else (link.custom if link else {})
    if custom:
        claims[LTI + "custom"] = custom
    if ags_scopes:
        endpoint: dict[str, Any] = {"scope": ags_scopes, "lineitems": platform.lineitems_url(course, tool)}
        if link is not None and link.line_item is not None:
            endpoint["lineitem"] = platform.lineitem_url(link.line_item, tool)
        claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = endpoint
    if request.message_type == "LtiSubmissionReviewRequest":
        reviewed = ensure_person(request.for_user or "student1")
        claims[LTI + "for_user"] = {"user_id": reviewed.sub}  # all that Moodle 4.5 sends
        if course_style(course, tool) != Style.MOODLE:
            claims[LTI + "for_user"].update(
                {
                    "name": reviewed.name,
                    "given_name": reviewed.given_name,
                    "family_name": reviewed.family_name,
                    "email": reviewed.email,
                    "roles": [ROLE_LEARNER],
                }
            )
    return claims


def authorize(platform: Platform, params: Any) -> tuple[str, dict[str, str]]:
    """The OIDC authorization endpoint: validate the tool's auth request; return (redirect_uri, form fields)."""

    def param(name: str, limit: int = 2048) -> str:
        value = params.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise PlatformError(400, f"{name} is too long or malformed.", error="invalid_request")
        return value

    if param("scope") != "openid":
        raise PlatformError(400, "scope must be openid.", error="invalid_scope")
    if param("response_type") != "id_token":
        raise PlatformError(400, "response_type must be id_token.", error="unsupported_response_type")
    if param("response_mode") != "form_post":
        raise PlatformError(400, "response_mode must be form_post.", error="invalid_request")
    prompt = param("prompt")
    if prompt and prompt != "none":
        raise PlatformError(400, "prompt must be none.", error="invalid_request")
    tool = Tool.objects.filter(client_id=param("client_id", 64)).first()
    if tool is None or not tool.active or not tool.deployment_id:
        raise PlatformError(400, "Unknown or inactive client_id.", error="unauthorized_client")
    redirect_uri = param("redirect_uri", 500)
    if redirect_uri not in tool.redirect_uris:
        raise PlatformError(
            400, "redirect_uri is not one of the tool's registered redirect URIs.", error="invalid_request"
        )
    nonce = param("nonce", 255)
    if not nonce:
        raise PlatformError(400, "nonce is required.", error="invalid_request")
    state = param("state", 2048)
    try:
        hint = signing.loads(param("lti_message_hint", 8192), salt=HINT_SALT, max_age=HINT_MAX_AGE_S)
    except signing.BadSignature:
        raise PlatformError(400, "lti_message_hint is missing, forged or expired.", error="invalid_request")
    if hint.pop("tool", None) != tool.pk:
        raise PlatformError(400, "lti_message_hint belongs to another tool.", error="invalid_request")
    request = LaunchRequest(**hint)
    person = ensure_person(request.user)
    if param("login_hint", 255) != person.sub:
        raise PlatformError(400, "login_hint does not match the user who started the launch.", error="login_required")
    token = jose.sign_platform_jwt(launch_claims(platform, request, tool, nonce))
    fields = {"id_token": token}
    if state:
        fields["state"] = state
    if request.storage_target:
        fields["lti_storage_target"] = request.storage_target
    return redirect_uri, fields


# --- Deep linking return ------------------------------------------------------------------------------------------


def accept_deep_link_response(platform: Platform, token: str) -> tuple[list[ResourceLink], str]:
    """Verify the tool's LtiDeepLinkingResponse and create the returned resource links (with gradebook columns).

    Returns the new links and the username of the instructor who ran the deep linking.
    """
    try:
        import jwt as pyjwt

        unverified = pyjwt.decode(token, options={"verify_signature": False})
    except Exception:
        raise PlatformError(400, "The deep-linking response is not a readable JWT.")
    if has_nul(unverified):
        raise PlatformError(400, "The deep-linking response holds a NUL character.")
    tool = Tool.objects.filter(client_id=str(unverified.get("iss", ""))[:64]).first()
    if tool is None:
        raise PlatformError(400, "The deep-linking response comes from an unknown client_id (iss).")
    try:
        claims = jose.verify_tool_jwt(token, jwks_uri=tool.jwks_uri, audience=platform.issuer, issuer=tool.client_id)
    except jose.TokenError as exc:
        raise PlatformError(400, f"The deep-linking response failed verification: {exc}")
    if claims.get(LTI + "message_type") != "LtiDeepLinkingResponse":
        raise PlatformError(400, "message_type must be LtiDeepLinkingResponse.")
    if claims.get(LTI + "version") != "1.3.0":
        raise PlatformError(400, "version must be 1.3.0.")
    if claims.get(LTI + "deployment_id") != tool.deployment_id:
        raise PlatformError(400, "deployment_id does not match the tool's deployment.")
    try:
        data = signing.loads(
            claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data", ""), salt=DL_DATA_SALT, max_age=3600
        )
    except (signing.BadSignature, TypeError, AttributeError, ValueError):
        raise PlatformError(400, "The data claim is not the one the platform sent.")
    if data.get("tool") != tool.pk:
        raise PlatformError(400, "The data claim belongs to another tool.")
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    if not isinstance(items, list) or len(items) > 10:
        raise PlatformError(400, "content_items must be a list of at most 10 items.")
    course = get_course(data["course"])
    created = []
    with transaction.atomic():
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
                raise PlatformError(400, "Only ltiResourceLink content items are accepted.")
            custom = item.get("custom", {})
            if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
                raise PlatformError(400, "custom must be an object of strings.")
            line_item = item.get("lineItem")
            if line_item is not None:
                if not isinstance(line_item, dict) or not _positive_number(line_item.get("scoreMaximum")):
                    raise PlatformError(400, "lineItem.scoreMaximum must be a positive number.")
            created.append(
                add_resource_link(
                    course,
                    title=str(item.get("title") or "Untitled activity"),
                    custom=custom,
                    line_item=line_item,
                    tool=tool,
                )
            )
    return created, str(data.get("user", ""))


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value < 1e9


# --- Token endpoint -----------------------------------------------------------------------------------------------


def issue_access_token(platform: Platform, form: Any) -> dict[str, Any]:
    """client_credentials grant with a private_key_jwt assertion verified against the tool's JWKS."""
    if form.get("grant_type") != "client_credentials":
        raise PlatformError(400, "grant_type must be client_credentials.", error="unsupported_grant_type")
    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        raise PlatformError(400, "client_assertion_type must be jwt-bearer.", error="invalid_request")
    assertion = form.get("client_assertion", "")
    try:
        import jwt as pyjwt

        unverified = pyjwt.decode(assertion, options={"verify_signature": False})
    except Exception:
        raise PlatformError(400, "client_assertion is not a readable JWT.", error="invalid_request")
    if has_nul(unverified):
        raise PlatformError(400, "client_assertion holds a NUL character.", error="invalid_request")
    tool = Tool.objects.active().filter(client_id=str(unverified.get("iss", ""))[:64]).first()
    if tool is None:
        raise PlatformError(401, "Unknown or inactive client.", error="invalid_client")
    canvas = tool.style == Style.CANVAS
    try:
        claims = jose.verify_tool_jwt(
            assertion,
            jwks_uri=tool.jwks_uri,
            audience=[platform.token_url, platform.issuer],
            issuer=tool.client_id,
            verify_iat=not canvas,
        )
    except jose.TokenError as exc:
        raise PlatformError(401, f"client_assertion failed verification: {exc}", error="invalid_client")
    if canvas:
        _check_canvas_iat(claims.get("iat"))
    if claims.get("sub") != tool.client_id:
        raise PlatformError(401, "client_assertion sub must be the client_id.", error="invalid_client")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise PlatformError(400, "client_assertion needs a jti.", error="invalid_grant")
    UsedJti.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            UsedJti.objects.create(jti=jti, expires_at=timezone.now() + timedelta(hours=1))
    except IntegrityError:
        raise PlatformError(400, "client_assertion jti was already used.", error="invalid_grant")
    requested = str(form.get("scope", ""))[:2000].split()
    granted = [s for s in requested if s in tool.scope_list]
    if not granted:
        raise PlatformError(400, "None of the requested scopes is granted to this tool.", error="invalid_scope")
    token = AccessToken.objects.create(
        token=secrets.token_urlsafe(32),
        tool=tool,
        scopes=" ".join(granted),
        expires_at=timezone.now() + timedelta(seconds=ACCESS_TOKEN_LIFE_S),
    )
    return {
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFE_S,
        "scope": token.scopes,
    }


# Canvas's client-assertion rule (Canvas::Security::JwtValidator#iat): at most 30 s ahead, at most 5 minutes old.
CANVAS_IAT_FUTURE_BUFFER_S = 30
CANVAS_IAT_MAX_AGE_S = 300


def _check_canvas_iat(iat: Any) -> None:
    """Refuse an assertion dated too far ahead or back, with Canvas's status (400 invalid_request) and words."""
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise PlatformError(400, "the 'iat' must be a number", error="invalid_request")
    now = time.time()
    if iat < now - CANVAS_IAT_MAX_AGE_S:
        message = f"the 'iat' must be less than {CANVAS_IAT_MAX_AGE_S} seconds old"
        raise PlatformError(400, message, error="invalid_request")
    if iat > now + CANVAS_IAT_FUTURE_BUFFER_S:
        raise PlatformError(400, "the 'iat' must not be in the future", error="invalid_request")


def authenticate_service(authorization: str, any_of: list[str]) -> Tool:
    """The tool behind a service call's bearer token, holding at least one of `any_of` scopes (401/403 otherwise)."""
    if not authorization.startswith("Bearer "):
        raise PlatformError(401, "A bearer access token is required.", headers={"WWW-Authenticate": "Bearer"})
    row = AccessToken.objects.select_related("tool").filter(token=authorization[7:].strip()[:128]).first()
    if row is None or row.expires_at < timezone.now():
        raise PlatformError(
            401, "Invalid or expired access token.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    if not set(row.scopes.split()) & set(any_of):
        raise PlatformError(403, f"The access token lacks the scope: one of {any_of}.")
    return row.tool


def expire_access_tokens() -> int:
    """Make every issued access token expire now (to test the tool's 401 handling)."""
    return AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


# --- AGS ----------------------------------------------------------------------------------------------------------


def _service_course(course_pk: int, tool: Tool, type_id: str | None) -> Course:
    course = Course.objects.filter(pk=course_pk).first()
    if course is None:
        raise PlatformError(404, "No such course.")
    if course.concluded:
        raise PlatformError(404, "The course is concluded.")
    if course_style(course, tool) == Style.MOODLE and type_id != str(tool.pk):
        raise PlatformError(400, "type_id is missing or wrong (Moodle service URLs carry ?type_id=).")
    return course


def line_item_json(platform: Platform, item: LineItem, tool: Tool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": platform.lineitem_url(item, tool),
        "scoreMaximum": item.score_maximum,
        "label": item.label,
        "resourceId": item.resource_id,
        "tag": item.tag,
    }
    if item.resource_link_id:
        data["resourceLinkId"] = item.resource_link.link_id
    if item.start_date_time:
        data["startDateTime"] = item.start_date_time
    if item.end_date_time:
        data["endDateTime"] = item.end_date_time
    return data


def list_line_items(platform: Platform, tool: Tool, course_pk: int, query: Any) -> list[dict[str, Any]]:
    course = _service_course(course_pk, tool, query.get("type_id"))
    items = course.line_items.select_related("resource_link", "course").order_by("pk")
    if query.get("resource_link_id"):
        items = items.filter(resource_link__link_id=query["resource_link_id"][:64])
    if query.get("resource_id"):
        items = items.filter(resource_id=query["resource_id"][:200])
    if query.get("tag"):
        items = items.filter(tag=query["tag"][:200])
    return [line_item_json(platform, item, tool) for item in items[:MAX_PAGE_SIZE]]


def _line_item_fields(body: Any, course: Course, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PlatformError(400, "The body must be a JSON object.")
    fields: dict[str, Any] = {}
    if "scoreMaximum" in body or not partial:
        if not _positive_number(body.get("scoreMaximum")):
            raise PlatformError(400, "scoreMaximum must be a positive number.")
        fields["score_maximum"] = float(body["scoreMaximum"])
    if "label" in body or not partial:
        label = body.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise PlatformError(400, "label must be a non-empty string of at most 200 characters.")
        fields["label"] = label
    for key, attr in (
        ("resourceId", "resource_id"),
        ("tag", "tag"),
        ("startDateTime", "start_date_time"),
        ("endDateTime", "end_date_time"),
    ):
        if key in body:
            if not isinstance(body[key], str) or len(body[key]) > 200:
                raise PlatformError(400, f"{key} must be a string of at most 200 characters.")
            fields[attr] = body[key]
    if body.get("resourceLinkId"):
        link = ResourceLink.objects.filter(course=course, link_id=str(body["resourceLinkId"])[:64]).first()
        if link is None:
            raise PlatformError(400, "resourceLinkId is not a link in this course.")
        fields["resource_link"] = link
    return fields


def create_line_item(platform: Platform, tool: Tool, course_pk: int, query: Any, body: Any) -> dict[str, Any]:
    course = _service_course(course_pk, tool, query.get("type_id"))
    if isinstance(body, dict) and body.get("resourceLinkId") == f"devlms-{course.slug}":
        # Canvas's prepare_line_item_for_ags!: only an assignment's resource link gets a column (course navigation
        # is not one).
        raise PlatformError(404, "The specified resource does not exist.")
    fields = _line_item_fields(body, course, partial=False)
    with transaction.atomic():
        item = LineItem.objects.create(course=course, tool=tool, **fields)
        link = fields.get("resource_link")
        # Canvas: the first line item created for a resource link becomes its gradebook column.
        if link is not None and link.line_item_id is None:
            link.line_item = item
            link.save(update_fields=["line_item"])
    return line_item_json(platform, item, tool)


def _service_line_item(tool: Tool, course_pk: int, pk: int, query: Any) -> LineItem:
    course = _service_course(course_pk, tool, query.get("type_id"))
    item = LineItem.objects.select_related("course", "resource_link").filter(course=course, pk=pk).first()
    if item is None:
        raise PlatformError(404, "No such line item.")
    return item


def get_line_item(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any) -> dict[str, Any]:
    return line_item_json(platform, _service_line_item(tool, course_pk, pk, query), tool)


def update_line_item(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any, body: Any) -> dict[str, Any]:
    item = _service_line_item(tool, course_pk, pk, query)
    fields = _line_item_fields(body, item.course, partial=True)
    fields.pop("resource_link", None)  # a line item's link cannot be changed
    for attr, value in fields.items():
        setattr(item, attr, value)
    item.save()
    return line_item_json(platform, item, tool)


def list_results(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any) -> list[dict[str, Any]]:
    item = _service_line_item(tool, course_pk, pk, query)
    scores = item.scores.select_related("person").order_by("person__pk")
    if query.get("user_id"):
        scores = scores.filter(person__sub=query["user_id"][:64])
    base = platform.lineitem_url(item, tool)
    # Canvas answers the result: the score as the tool sent it, or the teacher's after a hand edit.
    canvas = course_style(item.course, tool) == Style.CANVAS
    return [
        {
            "id": f"{base}#result-{s.person.sub}",
            "scoreOf": base,
            "userId": s.person.sub,
            "resultScore": s.result_score if canvas else s.score_given,
            "resultMaximum": s.score_maximum,
            "comment": s.comment,
        }
        for s in scores
    ]


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise PlatformError(400, "timestamp must be an ISO-8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PlatformError(400, "timestamp is not ISO-8601.")
    if not 1970 <= parsed.year <= 9000:
        raise PlatformError(400, "timestamp is out of range.")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def post_score(tool: Tool, course_pk: int, pk: int, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
    """Receive a score (AGS), with Canvas or Moodle semantics; every received score is kept in the history.

    Returns (status, JSON answer); refusals are recorded, then answered (raised again only where they are answered
    in the status line, as Moodle does), once the line item is known.
    """
    item = _service_line_item(tool, course_pk, pk, query)
    style = course_style(item.course, tool)
    user_id = str(body.get("userId", ""))[:255] if isinstance(body, dict) else ""
    person = Person.objects.filter(sub=user_id).first() if user_id else None
    refusal = None
    try:
        with transaction.atomic():
            status, answer = _apply_score(item, style, person, body)
    except PlatformError as exc:
        refusal = exc
        status, answer = exc.status, {"error": exc.message}
    ScoreEvent.objects.create(
        line_item=item,
        person=person,
        user_id=user_id,
        payload=body if isinstance(body, dict) else {"_raw": str(body)[:1000]},
        status_code=status,
        detail=str(answer.get("error", "accepted"))[:255],
    )
    if refusal is not None and refusal.in_status_line:
        raise refusal
    return status, answer


def _apply_score(item: LineItem, style: str, person: Person | None, body: Any) -> tuple[int, dict[str, Any]]:
    moodle = style == Style.MOODLE
    if not isinstance(body, dict):
        raise PlatformError(400, "The body must be a JSON object.")
    for required in ("userId", "activityProgress", "gradingProgress", "timestamp"):
        if required not in body:
            raise PlatformError(400, f"{required} is required.")
    if body["activityProgress"] not in ACTIVITY_PROGRESS:
        raise PlatformError(400, "activityProgress is not a valid value.")
    if body["gradingProgress"] not in GRADING_PROGRESS:
        raise PlatformError(400, "gradingProgress is not a valid value.")
    timestamp = _parse_timestamp(body["timestamp"])
    given = body.get("scoreGiven")
    maximum = body.get("scoreMaximum")
    if given is not None:
        if not isinstance(given, int | float) or isinstance(given, bool) or given < 0:
            raise PlatformError(400, "scoreGiven must be a number >= 0.")
        if maximum is None and not moodle:
            raise PlatformError(422, "ScoreMaximum must be present when ScoreGiven is present.")
    if maximum is not None and (not isinstance(maximum, int | float) or isinstance(maximum, bool) or maximum <= 0):
        raise PlatformError(400 if moodle else 422, "scoreMaximum must be a number > 0.")
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 10_000:
        raise PlatformError(400, "comment must be a string of at most 10000 characters.")
    enrollment = Enrollment.objects.active().filter(course=item.course, person=person).first() if person else None
    if enrollment is None or enrollment.is_instructor:
        if moodle:  # exactly what Moodle 4.5 answers: the score echoed after the message, in the status line
            raise PlatformError(400, "Incorrect score received" + json.dumps(body)[:500], in_status_line=True)
        raise PlatformError(422, "User not found in course or is not a student")
    extension = {} if moodle else _canvas_extension(body)
    submitted_at = _submitted_at(extension)
    current = Score.objects.select_for_update().filter(line_item=item, person=person).first()
    if current is not None:
        if moodle and int(timestamp.timestamp()) <= int(current.timestamp.timestamp()):
            raise PlatformError(
                409,
                f"Refusing score with an earlier timestamp for item {item.pk} and user {person.sub}",
                in_status_line=True,
            )
        if not moodle and timestamp < current.timestamp:
            raise PlatformError(400, "Score timestamp can't be before last updated timestamp")
    grading = body["gradingProgress"]
    fields: dict[str, Any] = {
        "score_maximum": item.score_maximum,
        "activity_progress": body["activityProgress"],
        "grading_progress": grading,
        "comment": comment,
        "timestamp": timestamp,
    }
    if moodle:
        applies = grading == "FullyGraded" and given is not None
        scale = float(maximum if maximum is not None else 1.0)
        fields.update(score_given=float(given) / scale * item.score_maximum if applies else None, grader="tool")
    else:
        fields.update(_canvas_grade(item, current, given, maximum, grading, extension))
        fields["result_score"] = float(given) if given is not None else None
        if _canvas_new_submission(extension):
            # Canvas: submit_homework(submitted_at) at every score that does not say new_submission: false.
            fields["attempt"] = (current.attempt if current else 0) + 1
            fields["submitted_at"] = submitted_at or timezone.now()
    score, _ = Score.objects.update_or_create(line_item=item, person=person, defaults=fields)
    return 200, {"resultUrl": f"result-{person.sub}", "scoreGiven": score.score_given}


CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"
# Canvas refuses a submitted_at more than this far ahead of its clock (scores_controller#verify_valid_submitted_at).
SUBMITTED_AT_FUTURE_BUFFER = timedelta(minutes=1)


def _canvas_extension(body: dict[str, Any]) -> dict[str, Any]:
    extension = body.get(CANVAS_SUBMISSION)
    if extension is None:
        return {}
    if not isinstance(extension, dict):
        raise PlatformError(400, f"{CANVAS_SUBMISSION} must be an object.")
    return extension


def _flag(value: Any) -> bool | None:
    """A boolean as Canvas casts it (ActiveRecord::Type::Boolean): None when absent."""
    if value is None or value == "":
        return None
    return str(value).strip().lower() not in {"false", "0", "f", "off", "no"}


def _canvas_new_submission(extension: dict[str, Any]) -> bool:
    """Canvas: every score counts as a new submission unless new_submission is false or submission_type is none."""
    flag = _flag(extension.get("new_submission"))
    return (flag is None or flag) and extension.get("submission_type") != "none"


def _submitted_at(extension: dict[str, Any]) -> datetime | None:
    value = extension.get("submitted_at")
    if value in (None, ""):
        return None
    try:
        submitted_at = _parse_timestamp(value)
    except PlatformError:
        raise PlatformError(400, f"Provided submitted_at timestamp of {str(value)[:64]} not a valid timestamp")
    if submitted_at > timezone.now() + SUBMITTED_AT_FUTURE_BUFFER:
        raise PlatformError(400, f"Provided submitted_at timestamp of {value} in the future")
    return submitted_at


def _canvas_grade(
    item: LineItem, current: Score | None, given: Any, maximum: Any, grading: str, extension: dict[str, Any]
) -> dict[str, Any]:
    """The gradebook cell after a score, as Canvas's scores_controller#score_submission decides it."""
    kept = {
        "score_given": current.score_given if current else None,
        "grade": current.grade if current else "",
        "grader": current.grader if current else "",
    }
    reset = grading not in {"FullyGraded", "PendingManual"} or given is None
    if _flag(extension.get("preserve_score")) or reset:
        return kept if _flag(extension.get("preserve_score")) else {"score_given": None, "grade": "", "grader": ""}
    if _flag(extension.get("prioritize_non_tool_grade")) and kept["score_given"] is not None:
        return kept  # any grade already there wins (a teacher's, or an earlier one)
    if item.grading_type == "pass_fail":
        passed = float(given) > 0
        return {
            "score_given": item.score_maximum if passed else 0.0,
            "grade": "complete" if passed else "incomplete",
            "grader": "tool",
        }
    scale = float(maximum) if maximum else 1.0
    return {"score_given": float(given) / scale * item.score_maximum, "grade": "", "grader": "tool"}


def grade_by_hand(item: LineItem, person: Person, score: float | None) -> Score:
    """A teacher types a grade into the gradebook (Canvas: SpeedGrader), or clears it with None.

    As in Canvas (`submission.rb`: `results.update_all(result_score: score)`), the tool's result takes the teacher's
    score but keeps its updated_at, so a later tool score with a newer timestamp is accepted and replaces the grade
    unless it asks for `prioritize_non_tool_grade`.
    """
    if score is not None and not (isinstance(score, int | float) and 0 <= score <= 1e6):
        raise PlatformError(400, "The grade must be a number between 0 and 1000000, or empty to clear it.")
    if not Enrollment.objects.active().filter(course=item.course_id, person=person, is_instructor=False).exists():
        raise PlatformError(400, "Only a student of the course can be graded.")
    grade = "" if score is None or item.grading_type != "pass_fail" else ("complete" if score > 0 else "incomplete")
    with transaction.atomic():
        cell = Score.objects.select_for_update().filter(line_item=item, person=person).first()
        if cell is None:
            # Graded before the tool sent anything: no result yet, so nothing for a tool timestamp to be older than.
            cell = Score(line_item=item, person=person, timestamp=datetime(1970, 1, 1, tzinfo=UTC))
        cell.score_given = None if score is None else float(score)
        cell.score_maximum = item.score_maximum
        cell.result_score = cell.score_given
        cell.grade = grade
        cell.grader = "teacher"
        cell.save()
    return cell


# --- NRPS ---------------------------------------------------------------------------------------------------------


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


# --- Faults -------------------------------------------------------------------------------------------------------


def set_fault(mode: str, count: int | None = None, seconds: float | None = None) -> Fault:
    """Make the service endpoints misbehave: for the next `count` requests, or until cleared when None."""
    if mode not in Fault.Mode.values:
        raise PlatformError(400, f"mode must be one of {Fault.Mode.values}")
    if count is not None and not 0 < count <= 1_000_000:
        raise PlatformError(400, "count must be between 1 and 1000000.")
    if seconds is not None and not 0 <= seconds <= 600:
        raise PlatformError(400, "seconds must be between 0 and 600.")
    Fault.objects.filter(pk=1).delete()
    return Fault.objects.create(pk=1, mode=mode, remaining=count, seconds=1.0 if seconds is None else seconds)


def clear_faults() -> None:
    """Back to normal service."""
    Fault.objects.all().delete()


def take_fault() -> tuple[str, float] | None:
    """The fault that applies to this request, if any (uses one of the remaining count)."""
    with transaction.atomic():
        fault = Fault.objects.select_for_update().filter(pk=1).first()
        if fault is None:
            return None
        if fault.remaining is not None:
            if fault.remaining <= 0:
                fault.delete()
                return None
            Fault.objects.filter(pk=1).update(remaining=F("remaining") - 1, hits=F("hits") + 1)
        else:
            Fault.objects.filter(pk=1).update(hits=F("hits") + 1)
        return fault.mode, fault.seconds
