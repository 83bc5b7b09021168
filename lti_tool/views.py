"""LTI endpoints: OIDC login, launch, JWKS, Dynamic Registration and the Canvas developer-key JSON.

Views parse the request, call `launches`/`services`, and render. Every refusal is a 4xx page that says what failed and
what the LMS administrator should check; it is logged with a reason code and counted in LAUNCHES_REFUSED.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from config.metrics import LAUNCHES, LAUNCHES_REFUSED
from lti_tool import dynreg, keys, launches, services, targets
from lti_tool import validation as v
from lti_tool.claims import DEEP_LINKING_REQUEST, SUBMISSION_REVIEW_REQUEST
from lti_tool.gradebook import services as gradebook
from lti_tool.ratelimit import rate_limited
from lti_tool.sessions import remember_launch
from lti_tool.validation import LaunchRefused

logger = logging.getLogger("lti_tool.launch")

LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id")
NEW_WINDOW_PARAM = "lti1p3_new_window"
MAX_PARAM_CHARS = 4096


def refuse(request: HttpRequest, exc: LaunchRefused, *, stage: str = "launch") -> HttpResponse:
    """Log, count and render a refused login/launch."""
    LAUNCHES_REFUSED.labels(reason=exc.reason).inc()
    logger.warning(
        "LTI %s refused: %s",
        stage,
        exc.message,
        extra={"event": f"{stage}_refused", "reason": exc.reason, "status": exc.status, "admin_hint": exc.admin_hint},
    )
    response = render(
        request,
        "lti_tool/launch_error.html",
        {
            "reason": exc.reason,
            "message": exc.message,
            "admin_hint": exc.admin_hint,
            "status": exc.status,
            "checklist": exc.reason not in v.SOUND_LAUNCH_REASONS,
        },
        status=exc.status,
    )
    response.lti_frame_anywhere = True  # a page with no actions: whichever LMS framed it may show it
    return response


def _params(request: HttpRequest) -> dict[str, str]:
    data = request.GET if request.method == "GET" else request.POST
    return {k: data.get(k, "")[:MAX_PARAM_CHARS] for k in (*LOGIN_PARAMS, "lti_storage_target", NEW_WINDOW_PARAM)}


def _redirect(url: str, status: int = 302) -> HttpResponse:
    """A redirect to any URL (the platform's authorization endpoint is off-site), with the given status."""
    response = HttpResponse(status=status)
    response["Location"] = url
    return response


# --- OIDC login -------------------------------------------------------------------------------------------------------
@csrf_exempt
@xframe_options_exempt
@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("login", "LTI_RATE_LIMIT_LOGIN")
def login(request: HttpRequest) -> HttpResponse:
    """Third-party-initiated login: check the platform, then redirect to its OIDC authorization endpoint.

    Inside an iframe (Sec-Fetch-Dest: iframe) or when the platform offers postMessage storage, the answer is a page
    whose script checks that cookies work (else it offers "open in a new window") and stores state in the
    platform's storage before it navigates to the platform.
    """
    try:
        params = _params(request)
    except (RequestDataTooBig, TooManyFieldsSent):
        return refuse(request, LaunchRefused("request_too_large", "The login request is too large."), stage="login")
    target = params["target_link_uri"]
    try:
        if not target:
            raise LaunchRefused("login_target_missing", "The login request has no target_link_uri.")
        if v.url_netloc(target) not in services.tool_netlocs(request):
            raise LaunchRefused(
                "login_target_invalid",
                "The login request is meant for another tool.",
                admin_hint=f"target_link_uri {target[:200]!r} does not point at this tool.",
            )
        storage_target = params["lti_storage_target"][:100]
        start = launches.start_login(
            request, launch_url=services.tool_url("lti_tool:launch", request), storage_target=storage_target
        )
    except LaunchRefused as exc:
        return refuse(request, exc, stage="login")
    in_iframe = request.headers.get("Sec-Fetch-Dest") == "iframe"
    if (in_iframe or storage_target) and not params[NEW_WINDOW_PARAM]:
        query = {k: params[k] for k in LOGIN_PARAMS if params[k]}
        query[NEW_WINDOW_PARAM] = "1"
        response = render(
            request,
            "lti_tool/login.html",
            {
                "auth_url": start.auth_url,
                "state": start.state,
                "nonce": start.nonce,
                "storage_target": storage_target,
                "auth_origin": start.auth_origin,
                "new_window_url": reverse("lti_tool:login") + "?" + urlencode(query),
                "secure": request.is_secure(),
            },
        )
    else:
        response = _redirect(start.auth_url)
    return start.apply_cookies(response)


# --- Launch -----------------------------------------------------------------------------------------------------------
@csrf_exempt
@xframe_options_exempt
@never_cache
@require_http_methods(["POST"])
def launch(request: HttpRequest) -> HttpResponse:
    """The id_token POST: validate completely, sync rows, remember the launch, redirect into the tool."""
    try:
        try:
            request.POST  # noqa: B018 - parse now so an oversized body is refused here
        except (RequestDataTooBig, TooManyFieldsSent) as exc:
            raise LaunchRefused("request_too_large", "The launch request is larger than any real LTI launch.") from exc
        validated = launches.validate_launch(request, tool_netlocs=services.tool_netlocs(request))
        synced = services.sync_launch(validated)  # refuses a deployment that must wait for IT
    except launches.PlatformStorageCheck as check:
        return render(
            request,
            "lti_tool/storage_launch.html",
            {
                "state": check.state,
                "storage_target": check.storage_target,
                "auth_origin": check.auth_origin,
                "id_token": request.POST["id_token"],
                "launch_url": reverse("lti_tool:launch"),
            },
        )
    except LaunchRefused as exc:
        return refuse(request, exc)
    LAUNCHES.labels(message_type=validated.message_type).inc()
    logger.info(
        "LTI launch accepted",
        extra={
            "event": "launch_accepted",
            "message_type": validated.message_type,
            "registration": validated.registration.pk,
            "deployment": synced.deployment.pk,
            "lti_user": synced.lti_user.pk,
        },
    )
    if validated.message_type == DEEP_LINKING_REQUEST:
        launch_id = services.remember_deep_link(request, synced, validated.claims)
        return _redirect(targets.url("deep_link", launch_id=launch_id), status=303)
    assert synced.resource_link is not None
    remember_launch(request, synced.info)
    if synced.info.is_staff:
        gradebook.request_roster_sync(synced.context)
    rl_pk = synced.resource_link.pk
    if validated.message_type == SUBMISSION_REVIEW_REQUEST:
        assert synced.for_user is not None
        url = targets.url("submission_review", resource_link_pk=rl_pk, lti_user_pk=synced.for_user.pk)
    else:
        url = targets.url("resource_link", resource_link_pk=rl_pk)
    return _redirect(url, status=303)


# --- Keys and configuration -------------------------------------------------------------------------------------------
@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys (published and active)."""
    response = JsonResponse(keys.public_jwks())
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def canvas_config(request: HttpRequest) -> JsonResponse:
    """Canvas developer-key JSON (paste its URL into Canvas > Developer Keys > LTI Key > Enter URL)."""
    base = services.tool_base_url(request)
    launch_url = services.tool_url("lti_tool:launch", request)
    title = settings.LTI_TOOL_TITLE
    config = {
        "title": title,
        "description": "Timed ResNet challenges: multiple-choice questions and PyTorch code, graded automatically.",
        "oidc_initiation_url": services.tool_url("lti_tool:login", request),
        "target_link_uri": launch_url,
        "scopes": dynreg.TOOL_SCOPES,
        "public_jwk_url": services.tool_url("lti_tool:jwks", request),
        "custom_fields": {},
        "extensions": [
            {
                "domain": v.url_netloc(base),
                "tool_id": "resnet-challenges",
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {
                    "text": title,
                    "placements": [
                        {
                            "placement": "assignment_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch_url,
                            "text": title,
                        },
                        {
                            "placement": "link_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch_url,
                            "text": title,
                        },
                        {
                            "placement": "course_navigation",
                            "message_type": "LtiResourceLinkRequest",
                            "target_link_uri": launch_url,
                            "text": title,
                            "default": "disabled",
                        },
                    ],
                },
            }
        ],
    }
    return JsonResponse(config)


# --- Dynamic Registration ---------------------------------------------------------------------------------------------
@xframe_options_exempt
@never_cache
@require_GET
@rate_limited("register", "LTI_RATE_LIMIT_REGISTER")
def register(request: HttpRequest) -> HttpResponse:
    """LTI Dynamic Registration: the platform opens this URL with openid_configuration and registration_token."""
    code = settings.LTI_REGISTRATION_ACCESS_CODE
    if code and not hmac.compare_digest(request.GET.get("access_code", "").encode(), code.encode()):
        return _registration_error(
            request,
            dynreg.RegistrationFailed(
                "access_code_invalid",
                "This registration URL needs the access code from the tool's IT team: "
                "use the full URL they gave you (…/lti/register/?access_code=…).",
                status=403,
            ),
        )
    config_url = request.GET.get("openid_configuration", "")
    if not config_url:
        return _registration_error(
            request,
            dynreg.RegistrationFailed(
                "config_url_missing",
                "Paste this URL into your LMS's tool registration (LTI Advantage / Dynamic Registration) page; "
                "the LMS opens it with its openid_configuration.",
            ),
        )
    try:
        registration = services.register_dynamically(
            openid_configuration=config_url[:1000],
            registration_token=request.GET.get("registration_token", ""),
            base_url=services.tool_base_url(request),
        )
    except dynreg.RegistrationFailed as exc:
        return _registration_error(request, exc)
    logger.info(
        "LTI dynamic registration",
        extra={"event": "registered", "registration": registration.pk, "status": registration.status},
    )
    return render(request, "lti_tool/registered.html", {"registration": registration})


def _registration_error(request: HttpRequest, exc: dynreg.RegistrationFailed) -> HttpResponse:
    logger.warning(
        "LTI dynamic registration refused: %s",
        exc.message,
        extra={"event": "registration_refused", "reason": exc.reason},
    )
    return render(
        request,
        "lti_tool/registration_error.html",
        {"reason": exc.reason, "message": exc.message},
        status=exc.status,
    )
