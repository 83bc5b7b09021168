"""HTTP face of the development LMS: protocol endpoints the tool calls, and pages a person uses."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lti_tool.devlms import jose, services
from lti_tool.devlms.models import Course, Fault, LineItem, Person, ScoreEvent, Style, Tool
from lti_tool.devlms.services import LaunchRequest, Platform, PlatformError
from lti_tool.outbound import has_nul

LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_JSON_BYTES = 100_000


def _json(data: Any, status: int = 200, content_type: str = "application/json", **headers: str) -> HttpResponse:
    response = HttpResponse(json.dumps(data), status=status, content_type=content_type)
    for name, value in headers.items():
        response[name] = value
    return response


def _error(exc: PlatformError) -> HttpResponse:
    if exc.in_status_line:
        response = HttpResponse(
            "[]", status=exc.status, reason=exc.message, content_type="application/vnd.ims.lis.v1.score+json"
        )
    else:
        body: dict[str, Any] = {"error": exc.error or "request_refused", "error_description": exc.message}
        response = _json(body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _body_json(request: HttpRequest) -> Any:
    if len(request.body) > MAX_JSON_BYTES:
        raise PlatformError(413, "The body is too large.")
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise PlatformError(400, "The body is not JSON.")
    if has_nul(data):
        raise PlatformError(400, "The body holds a NUL character.")
    return data


def _check_params(request: HttpRequest) -> None:
    """No database text can hold a NUL: a query or form parameter (or bearer token) carrying one is refused before
    any view reads it, so no lookup fails with a 500 (PostgreSQL) or matches a truncated value (SQLite)."""
    fields = [request.headers.get("Authorization", "")]
    # The raw body first: once a multipart POST is parsed, a JSON view could no longer read request.body.
    request.body  # noqa: B018
    for query in (request.GET, request.POST):
        for key, values in query.lists():
            fields += [key, *values]
    if any(has_nul(field) for field in fields):
        raise PlatformError(400, "A parameter holds a NUL character.", error="invalid_request")


def checked(page_title: str | None = None) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Every development-LMS view: bad parameters are refused with the error page (page_title) or as JSON."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                _check_params(request)
            except PlatformError as exc:
                if page_title is None:
                    return _error(exc)
                return render(
                    request, "devlms/error.html", {"title": page_title, "message": exc.message}, status=exc.status
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def service_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Token/AGS/NRPS endpoints: fault injection first (as if the LMS were sick), then PlatformError -> JSON."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        fault = services.take_fault()
        if fault is not None:
            mode, seconds = fault
            if mode == Fault.Mode.SLOW:
                time.sleep(seconds)
            elif mode == Fault.Mode.DOWN:
                return HttpResponse("Service Unavailable (devlms fault: down)", status=503, content_type="text/plain")
            elif mode == Fault.Mode.ERROR_5XX:
                return HttpResponse("Bad Gateway (devlms fault: 5xx)", status=502, content_type="text/plain")
            elif mode == Fault.Mode.RATE_LIMIT:
                response = HttpResponse(
                    "Rate Limit Exceeded (devlms fault: 429)", status=429, content_type="text/plain"
                )
                response["Retry-After"] = str(max(0, int(round(seconds))))
                return response
        try:
            _check_params(request)
            return view(request, *args, **kwargs)
        except PlatformError as exc:
            return _error(exc)

    return csrf_exempt(wrapper)


# --- Protocol endpoints -------------------------------------------------------------------------------------------


@require_GET
@checked()
def openid_configuration(request: HttpRequest) -> HttpResponse:
    """Public, except during a Canvas-style registration (?registration=<token id>), which needs the bearer token."""
    style = ""
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else ""
    try:
        if token:
            style = services.check_registration_token(token).style
        elif request.GET.get("canvas"):
            raise PlatformError(401, "Canvas requires the registration token as a bearer token on this GET.")
    except PlatformError as exc:
        return _error(exc)
    return JsonResponse(services.openid_configuration(Platform.for_request(request), style))


@require_GET
@checked()
def jwks(request: HttpRequest) -> HttpResponse:
    return JsonResponse(jose.platform_jwks())


@csrf_exempt
@require_http_methods(["GET", "POST"])
@checked("Launch refused by the platform")
def auth(request: HttpRequest) -> HttpResponse:
    """OIDC authorization endpoint: an auto-submitting form that posts id_token and state to the tool."""
    params = request.POST if request.method == "POST" else request.GET
    try:
        action, fields = services.authorize(Platform.for_request(request), params)
    except PlatformError as exc:
        return render(
            request,
            "devlms/error.html",
            {"title": "Launch refused by the platform", "message": exc.message},
            status=exc.status,
        )
    return render(request, "devlms/autopost.html", {"action": action, "fields": fields.items()})


@service_endpoint
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """OAuth 2 client_credentials with a JWT assertion (form-encoded, as Moodle requires)."""
    answer = services.issue_access_token(Platform.for_request(request), request.POST)
    return _json(answer, **{"Cache-Control": "no-store"})


@csrf_exempt
@require_POST
@checked()
def registration(request: HttpRequest) -> HttpResponse:
    """Dynamic Registration endpoint: bearer registration token, JSON client registration in, client_id out."""
    auth_header = request.headers.get("Authorization", "")
    try:
        if not auth_header.startswith("Bearer "):
            raise PlatformError(401, "The registration token is required as a bearer token.", error="invalid_token")
        body = _body_json(request)
        _, answer = services.register_client(Platform.for_request(request), auth_header[7:].strip(), body)
    except PlatformError as exc:
        return _error(exc)
    return _json(answer)


@csrf_exempt
@require_POST
@checked("Deep linking refused")
def deep_link_return(request: HttpRequest) -> HttpResponse:
    """Where the tool posts its LtiDeepLinkingResponse JWT (form field JWT)."""
    try:
        links, username = services.accept_deep_link_response(Platform.for_request(request), request.POST.get("JWT", ""))
    except PlatformError as exc:
        return render(
            request, "devlms/error.html", {"title": "Deep linking refused", "message": exc.message}, status=exc.status
        )
    return render(request, "devlms/deep_link_done.html", {"links": links, "username": username})


@service_endpoint
@require_http_methods(["GET", "POST"])
def lineitems(request: HttpRequest, course_pk: int) -> HttpResponse:
    platform = Platform.for_request(request)
    if request.method == "GET":
        tool = services.authenticate_service(
            request.headers.get("Authorization", ""), [services.SCOPE_LINEITEM, services.SCOPE_LINEITEM_READONLY]
        )
        return _json(services.list_line_items(platform, tool, course_pk, request.GET), content_type=LINEITEM_CONTAINER)
    tool = services.authenticate_service(request.headers.get("Authorization", ""), [services.SCOPE_LINEITEM])
    item = services.create_line_item(platform, tool, course_pk, request.GET, _body_json(request))
    return _json(item, status=201, content_type=LINEITEM)


@service_endpoint
@require_http_methods(["GET", "PUT"])
def lineitem(request: HttpRequest, course_pk: int, pk: int) -> HttpResponse:
    platform = Platform.for_request(request)
    if request.method == "GET":
        tool = services.authenticate_service(
            request.headers.get("Authorization", ""), [services.SCOPE_LINEITEM, services.SCOPE_LINEITEM_READONLY]
        )
        return _json(services.get_line_item(platform, tool, course_pk, pk, request.GET), content_type=LINEITEM)
    tool = services.authenticate_service(request.headers.get("Authorization", ""), [services.SCOPE_LINEITEM])
    item = services.update_line_item(platform, tool, course_pk, pk, request.GET, _body_json(request))
    return _json(item, content_type=LINEITEM)


@service_endpoint
@require_POST
def scores(request: HttpRequest, course_pk: int, pk: int) -> HttpResponse:
    tool = services.authenticate_service(request.headers.get("Authorization", ""), [services.SCOPE_SCORE])
    status, answer = services.post_score(tool, course_pk, pk, request.GET, _body_json(request))
    return _json(answer, status=status)


@service_endpoint
@require_GET
def results(request: HttpRequest, course_pk: int, pk: int) -> HttpResponse:
    tool = services.authenticate_service(request.headers.get("Authorization", ""), [services.SCOPE_RESULT_READONLY])
    data = services.list_results(Platform.for_request(request), tool, course_pk, pk, request.GET)
    return _json(data, content_type=RESULTS)


@service_endpoint
@require_GET
def memberships(request: HttpRequest, course_pk: int, tool_pk: int) -> HttpResponse:
    tool = services.authenticate_service(request.headers.get("Authorization", ""), [services.SCOPE_NRPS])
    container, next_url = services.memberships(Platform.for_request(request), tool, course_pk, tool_pk, request.GET)
    response = _json(container, content_type=MEMBERSHIPS)
    if next_url:
        response["Link"] = f'<{next_url}>; rel="next"'
    return response


# --- Pages for a person -------------------------------------------------------------------------------------------


def _user(request: HttpRequest) -> Person:
    services.ensure_seed()
    username = request.GET.get("user") or request.POST.get("user") or "instructor1"
    return services.ensure_person(username[:64] if username.replace("_", "").isalnum() else "instructor1")


@require_GET
@checked("Bad request")
def home(request: HttpRequest) -> HttpResponse:
    """Pick a user; see courses, links (launch in a frame or a new window), gradebooks, registration, faults."""
    person = _user(request)
    tool = services.current_tool()
    here = Platform.for_request(request).issuer
    wrong_address = tool.issuer.removesuffix("/devlms") if tool and tool.issuer and tool.issuer != here else ""
    courses = Course.objects.filter(enrollments__person=person, enrollments__active=True).order_by("slug")
    course_rows = []
    for course in courses:
        links = course.resource_links.select_related("line_item").order_by("pk")
        course_rows.append({"course": course, "links": links})
    return render(
        request,
        "devlms/home.html",
        {
            "person": person,
            "people": Person.objects.order_by("is_instructor", "username"),
            "tool": tool,
            "wrong_address": wrong_address,
            "tools": Tool.objects.order_by("-created_at")[:10],
            "courses": course_rows,
            "fault": Fault.objects.filter(pk=1).first(),
            "fault_modes": Fault.Mode.choices,
        },
    )


def _launch_request(request: HttpRequest) -> LaunchRequest:
    q = request.GET
    message_type = q.get("message_type", "LtiResourceLinkRequest")
    target = q.get("target", "iframe")
    if target not in {"iframe", "window"}:
        raise PlatformError(400, "target must be iframe or window.")
    # Platform storage only inside the course page's iframe (the page answers lti.put_data / lti.get_data).
    storage = q.get("storage") == "1" and target == "iframe"
    return LaunchRequest(
        user=_user(request).username,
        course=q.get("course", "course1")[:64],
        resource_link=q.get("link", "link1")[:64] if message_type != "LtiDeepLinkingRequest" else None,
        message_type=message_type,
        document_target=target,
        for_user=q.get("for_user", "")[:64] or None,
        storage_target="_parent" if storage else None,
    )


@require_GET
@checked("Cannot launch")
def launch_start(request: HttpRequest) -> HttpResponse:
    """Start a launch: send the browser to the tool's login initiation URL (third-party-initiated login)."""
    try:
        url, params = services.login_initiation(Platform.for_request(request), _launch_request(request))
    except PlatformError as exc:
        return render(
            request, "devlms/error.html", {"title": "Cannot launch", "message": exc.message}, status=exc.status
        )
    return HttpResponseRedirect(f"{url}?{urlencode(params)}")


@require_GET
@checked("Cannot launch")
def launch_frame(request: HttpRequest) -> HttpResponse:
    """A course page with the tool in an iframe (what Canvas and Moodle show by default)."""
    try:
        launch = _launch_request(request)
        course = services.get_course(launch.course)
    except PlatformError as exc:
        return render(
            request, "devlms/error.html", {"title": "Cannot launch", "message": exc.message}, status=exc.status
        )
    query = request.GET.copy()
    query["target"] = "iframe"
    if "storage" not in query:
        # Canvas offers postMessage storage to tools in its iframes; mimic it for Canvas-style tools.
        tool = services.current_tool()
        query["storage"] = "1" if tool and services.course_style(course, tool) == Style.CANVAS else "0"
    window_query = request.GET.copy()
    window_query["target"] = "window"
    window_query.pop("storage", None)
    return render(
        request,
        "devlms/launch_frame.html",
        {
            "person": services.ensure_person(launch.user),
            "course": course,
            "launch": launch,
            "storage": query["storage"] == "1",
            "frame_src": f"{request.path.replace('frame/', 'start/')}?{query.urlencode()}",
            "window_src": f"{request.path.replace('frame/', 'start/')}?{window_query.urlencode()}",
        },
    )


@require_http_methods(["GET", "POST"])
@checked("Bad request")
def gradebook(request: HttpRequest, course_slug: str) -> HttpResponse:
    """Line items x students with the current scores, and the raw AGS history. POST: a teacher's grade by hand
    (item, student, score; an empty score clears the grade), as in Canvas's SpeedGrader."""
    person = _user(request)
    try:
        course = services.get_course(course_slug)
    except PlatformError as exc:
        return render(request, "devlms/error.html", {"title": "No such course", "message": exc.message}, status=404)
    if request.method == "POST":
        try:
            _grade_by_hand(request, course)
        except PlatformError as exc:
            return render(
                request, "devlms/error.html", {"title": "Grade not saved", "message": exc.message}, status=exc.status
            )
        return HttpResponseRedirect(f"{request.path}?{urlencode({'user': person.username})}")
    items = list(LineItem.objects.filter(course=course).select_related("resource_link").order_by("pk"))
    students = [
        e.person
        for e in course.enrollments.filter(is_instructor=False).select_related("person").order_by("person__username")
    ]
    score_map = {(s.line_item_id, s.person_id): s for item in items for s in item.scores.all()}
    rows = [{"student": s, "cells": [score_map.get((i.pk, s.pk)) for i in items]} for s in students]
    events = ScoreEvent.objects.filter(line_item__course=course).select_related("line_item", "person").order_by("-pk")
    return render(
        request,
        "devlms/gradebook.html",
        {
            "person": person,
            "course": course,
            "items": items,
            "rows": rows,
            "events": events[:200],
            "tool": services.current_tool(),
        },
    )


def _grade_by_hand(request: HttpRequest, course: Course) -> None:
    item_pk = request.POST.get("item", "")
    valid_pk = item_pk.isdigit() and len(item_pk) < 10
    item = LineItem.objects.filter(course=course, pk=int(item_pk)).first() if valid_pk else None
    student = Person.objects.filter(username=request.POST.get("student", "")[:64]).first()
    if item is None or student is None:
        raise PlatformError(400, "Pick a gradebook column and a student of this course.")
    raw = request.POST.get("score", "").strip()[:32]
    try:
        score = float(raw) if raw else None
    except ValueError:
        raise PlatformError(400, "The grade must be a number, or empty to clear it.")
    if score is not None and score != score:  # NaN
        raise PlatformError(400, "The grade must be a number, or empty to clear it.")
    services.grade_by_hand(item, student, score)


@require_http_methods(["GET", "POST"])
@checked("Bad request")
def register(request: HttpRequest) -> HttpResponse:
    """The admin page: paste the tool's registration URL; the tool's page opens in an iframe."""
    person = _user(request)
    context: dict[str, Any] = {
        "person": person,
        "styles": Style.choices,
        "tool_url": request.build_absolute_uri("/lti/register/"),
    }
    if request.method == "POST":
        tool_url = request.POST.get("tool_url", "")[:500]
        style = request.POST.get("style", Style.CANVAS)
        if not tool_url.startswith(("http://", "https://")):
            context["error"] = "The registration URL must start with http:// or https://."
            return render(request, "devlms/register.html", context, status=400)
        try:
            reg = services.start_registration(style)
        except PlatformError as exc:
            context["error"] = exc.message
            return render(request, "devlms/register.html", context, status=400)
        platform = Platform.for_request(request)
        config_url = platform.url("openid_configuration", {"canvas": 1} if style == Style.CANVAS else None)
        separator = "&" if "?" in tool_url else "?"
        context["frame_src"] = (
            tool_url + separator + urlencode({"openid_configuration": config_url, "registration_token": reg.token})
        )
        context["tool_url"] = tool_url
    context["tools"] = Tool.objects.order_by("-created_at")[:10]
    return render(request, "devlms/register.html", context)


@require_POST
@checked("Bad request")
def install(request: HttpRequest, tool_pk: int) -> HttpResponse:
    """Canvas: deploy the registered key (creates the deployment id). Moodle: activate the pending tool."""
    tool = Tool.objects.filter(pk=tool_pk).first()
    if tool is None:
        return render(request, "devlms/error.html", {"title": "No such tool", "message": "Unknown tool."}, status=404)
    services.install_tool(tool)
    return HttpResponseRedirect(
        f"{Platform.for_request(request).url('home')}?{urlencode({'user': _user(request).username})}"
    )


@require_POST
@checked("Fault not set")
def faults(request: HttpRequest) -> HttpResponse:
    """Set or clear the fault injected into the service endpoints (CSRF-protected form or the test harness)."""
    mode = request.POST.get("mode", "")
    try:
        if mode in {"", "clear"}:
            services.clear_faults()
        else:
            count = request.POST.get("count", "")
            seconds = request.POST.get("seconds", "")
            services.set_fault(mode, int(count) if count else None, float(seconds) if seconds else None)
    except (ValueError, PlatformError) as exc:
        message = exc.message if isinstance(exc, PlatformError) else "count and seconds must be numbers."
        return render(request, "devlms/error.html", {"title": "Fault not set", "message": message}, status=400)
    return HttpResponseRedirect(
        f"{Platform.for_request(request).url('home')}?{urlencode({'user': _user(request).username})}"
    )
