"""Launches: OIDC login initiation, the signed id_token's claims, the authorization endpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.urls import reverse

from lti_tool.devlms import jose
from lti_tool.devlms.models import Course, Enrollment, Person, Style, Tool
from lti_tool.devlms.services.base import (
    AGS_SCOPES,
    CANVAS_PLACEMENT_CLAIM,
    COURSE_NAV_LINK,
    DL_DATA_SALT,
    HINT_MAX_AGE_S,
    HINT_SALT,
    ID_TOKEN_LIFE_S,
    LTI,
    MESSAGE_TYPES,
    ROLE_FACULTY_INST,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    ROLE_STUDENT_INST,
    ROLE_SYSTEM_USER,
    ROLE_TEACHER_INST,
    SCOPE_NRPS,
    Platform,
    PlatformError,
    course_style,
)
from lti_tool.devlms.services.seed import current_tool, ensure_enrollment, ensure_person, get_course, get_link


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
