"""Domain verbs of the LTI side: validate, then act, inside transaction.atomic."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from lti_tool import dynreg, frames, launches, sessions
from lti_tool import validation as v
from lti_tool.claims import (
    C_AGS,
    C_CONTEXT,
    C_CUSTOM,
    C_DL_SETTINGS,
    C_FOR_USER,
    C_NRPS,
    C_RESOURCE_LINK,
    C_ROLES,
    C_TOOL_PLATFORM,
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    SUBMISSION_REVIEW_REQUEST,
)
from lti_tool.gradebook import ags
from lti_tool.models import Context, Deployment, LtiUser, Membership, Registration, ResourceLink
from lti_tool.roles import course_roles, role_list
from lti_tool.sessions import DeepLinkLaunch, LaunchInfo

MAX_CUSTOM_PARAMS = 50
MAX_CUSTOM_VALUE_CHARS = 1000


# --- URLs of the tool -------------------------------------------------------------------------------------------------
def tool_base_url(request: HttpRequest | None = None) -> str:
    """https://host[:port] of the tool: settings.TOOL_BASE_URL, else derived from the request."""
    if settings.TOOL_BASE_URL:
        return settings.TOOL_BASE_URL
    if request is None:
        raise ValueError("TOOL_BASE_URL is not set and there is no request to derive it from")
    return request.build_absolute_uri("/").rstrip("/")


def tool_url(name: str, request: HttpRequest | None = None) -> str:
    """Absolute URL of one of the tool's named URLs (e.g. "lti_tool:launch")."""
    return tool_base_url(request) + reverse(name)


def tool_netlocs(request: HttpRequest | None = None) -> set[str]:
    """host[:port] values a target_link_uri may point at to mean this tool."""
    netlocs = set()
    if settings.TOOL_BASE_URL:
        netlocs.add(v.url_netloc(settings.TOOL_BASE_URL))
    if request is not None:
        netlocs.add(request.get_host().lower())
    return {n for n in netlocs if n}


# --- Gradability -----------------------------------------------------------------------------------------------------
CANVAS_PLACEMENT_CLAIM = "https://www.instructure.com/placement"
# Canvas placements that are never an assignment (lib/lti/messages/resource_link_request.rb: the link id is the
# course's own opaque id and no line item comes with it).
CANVAS_UNGRADED_PLACEMENTS = frozenset({"course_navigation", "account_navigation", "user_navigation"})


def _is_canvas(registration: Registration, claims: dict[str, Any]) -> bool:
    platform = claims.get(C_TOOL_PLATFORM)
    family = platform.get("product_family_code") if isinstance(platform, dict) else None
    return (
        registration.product_family == "canvas"
        or dynreg.is_canvas_cloud(registration.issuer)
        or (isinstance(family, str) and family.strip().lower() == "canvas")
    )


def link_can_be_graded(registration: Registration, claims: dict[str, Any]) -> bool:
    """Whether grades of this resource-link launch can reach the platform's gradebook.

    A launch with a `lineitem` claim can. Without one the tool would create a column by resourceLinkId, which Canvas
    allows only for assignments (`prepare_line_item_for_ags!`, else 404): a Canvas launch without a line item, a
    launch from a Canvas navigation placement, or one whose link id is the course's own id (Canvas course
    navigation) cannot be graded. Other platforms (Moodle) let the tool create the column.
    """
    ags_claim = claims.get(C_AGS)
    if isinstance(ags_claim, dict) and _url(ags_claim.get("lineitem")):
        return True
    placement = claims.get(CANVAS_PLACEMENT_CLAIM)
    if isinstance(placement, str) and placement in CANVAS_UNGRADED_PLACEMENTS:
        return False
    link = claims.get(C_RESOURCE_LINK) or {}
    context = claims.get(C_CONTEXT) or {}
    if isinstance(link, dict) and isinstance(context, dict) and link.get("id") and link.get("id") == context.get("id"):
        return False
    return not _is_canvas(registration, claims)


# --- Launch sync ------------------------------------------------------------------------------------------------------
@dataclass
class SyncedLaunch:
    """Rows a validated launch touched, and the LaunchInfo for the session."""

    info: LaunchInfo
    deployment: Deployment
    lti_user: LtiUser
    context: Context
    resource_link: ResourceLink | None
    for_user: LtiUser | None


def _text(value: Any, max_len: int) -> str:
    return value[:max_len] if isinstance(value, str) else ""


def _url(value: Any, max_len: int = 1000) -> str:
    return value if isinstance(value, str) and len(value) <= max_len and v.url_netloc(value) else ""


def _email(value: Any) -> str:
    return value if isinstance(value, str) and 3 <= len(value) <= 255 and "@" in value else ""


def _custom(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    custom = {}
    for key, val in list(value.items())[:MAX_CUSTOM_PARAMS]:
        if isinstance(key, str) and len(key) <= 255:
            custom[key] = val[:MAX_CUSTOM_VALUE_CHARS] if isinstance(val, str) else str(val)[:MAX_CUSTOM_VALUE_CHARS]
    return custom


def _person_fields(source: dict[str, Any]) -> dict[str, str]:
    """name/given_name/family_name/email, only those the platform sent."""
    fields = {}
    for key in ("name", "given_name", "family_name"):
        if isinstance(source.get(key), str):
            fields[key] = _text(source[key], 255)
    if "email" in source:
        email = _email(source.get("email"))
        if email:
            fields["email"] = email
    return fields


def _upsert_user(registration: Registration, sub: str, person: dict[str, Any]) -> LtiUser:
    fields = _person_fields(person)
    user, created = LtiUser.objects.get_or_create(registration=registration, sub=sub, defaults=fields)
    if not created and fields and any(getattr(user, k) != val for k, val in fields.items()):
        for key, val in fields.items():
            setattr(user, key, val)
        user.save()
    return user


def _get_or_create(model: Any, **kwargs: Any) -> Any:
    """get_or_create that survives the race of two first launches at once."""
    try:
        with transaction.atomic():
            return model.objects.get_or_create(**kwargs)[0]
    except IntegrityError:
        lookup = {k: val for k, val in kwargs.items() if k != "defaults"}
        return model.objects.get(**lookup)


def sync_launch(launch: launches.ValidatedLaunch) -> SyncedLaunch:
    """Create or update Deployment, LtiUser, Context, Membership and ResourceLink rows from a validated launch."""
    claims = launch.claims
    # Before the transaction below: a deployment recorded as pending stays recorded when its launch is refused.
    deployment = launch.deployment or admit_deployment(launch.registration, launch.deployment_id)
    with transaction.atomic():
        lti_user = _upsert_user(launch.registration, claims["sub"], claims)

        ctx_claim = claims.get(C_CONTEXT) or {}
        context = _get_or_create(Context, deployment=deployment, context_id=ctx_claim.get("id", ""))
        changed = {"title": _text(ctx_claim.get("title"), 500), "label": _text(ctx_claim.get("label"), 255)}
        ags = claims.get(C_AGS)
        if isinstance(ags, dict):
            if _url(ags.get("lineitems")):
                changed["lineitems_url"] = ags["lineitems"]
            scopes = ags.get("scope")
            if isinstance(scopes, list):
                changed["ags_scopes"] = [s for s in scopes if isinstance(s, str)][:20]
        nrps = claims.get(C_NRPS)
        if isinstance(nrps, dict) and _url(nrps.get("context_memberships_url")):
            changed["memberships_url"] = nrps["context_memberships_url"]
        changed = {k: val for k, val in changed.items() if val or k in ("ags_scopes",)}
        if any(getattr(context, k) != val for k, val in changed.items()):
            for key, val in changed.items():
                setattr(context, key, val)
            context.save()

        roles = role_list(claims.get(C_ROLES))
        standing = course_roles(roles)
        is_staff, is_learner = standing.is_staff, standing.is_learner
        Membership.objects.update_or_create(
            context=context,
            lti_user=lti_user,
            defaults={"roles": roles, "is_staff": is_staff, "is_learner": is_learner, "from_roster": False},
        )

        resource_link = None
        link_claim = claims.get(C_RESOURCE_LINK)
        if isinstance(link_claim, dict) and launch.message_type != DEEP_LINKING_REQUEST:
            resource_link = _get_or_create(ResourceLink, context=context, resource_link_id=link_claim["id"])
            updates: dict[str, Any] = {}
            if isinstance(link_claim.get("title"), str):
                updates["title"] = _text(link_claim["title"], 500)
            if isinstance(ags, dict) and _url(ags.get("lineitem")):
                updates["lineitem_url"] = ags["lineitem"]
            if launch.message_type == RESOURCE_LINK_REQUEST:
                updates["can_be_graded"] = link_can_be_graded(launch.registration, claims)
            if launch.message_type == RESOURCE_LINK_REQUEST:
                updates["custom"] = _custom(claims.get(C_CUSTOM))
            if any(getattr(resource_link, k) != val for k, val in updates.items()):
                for key, val in updates.items():
                    setattr(resource_link, key, val)
                resource_link.save()

        for_user = None
        if launch.message_type == SUBMISSION_REVIEW_REQUEST:
            fu = claims[C_FOR_USER]
            for_user = _upsert_user(launch.registration, fu["user_id"], fu)
        # The id_token verified: the LMS page it names (a school's own Canvas domain) may frame the tool.
        frames.learn_frame_origins(launch.registration, claims)

    info = LaunchInfo(
        launch_id=launch.launch_id,
        message_type=launch.message_type,
        registration_pk=launch.registration.pk,
        deployment_pk=deployment.pk,
        lti_user_pk=lti_user.pk,
        context_pk=context.pk,
        resource_link_pk=resource_link.pk if resource_link else None,
        roles=roles,
        is_staff=is_staff,
        is_learner=is_learner,
        custom=_custom(claims.get(C_CUSTOM)),
        for_user_sub=for_user.sub if for_user is not None else None,
    )
    return SyncedLaunch(
        info=info,
        deployment=deployment,
        lti_user=lti_user,
        context=context,
        resource_link=resource_link,
        for_user=for_user,
    )


# --- Deep linking -----------------------------------------------------------------------------------------------------
@dataclass
class DeepLinkItem:
    """One ltiResourceLink content item to return to the platform."""

    title: str
    custom: dict[str, str]
    score_maximum: float | None
    label: str
    resource_id: str
    tag: str
    text: str = ""


def remember_deep_link(request: HttpRequest, synced: SyncedLaunch, claims: dict[str, Any]) -> str:
    """Store what a deep-linking response needs in the session; returns the launch id."""
    dl = claims[C_DL_SETTINGS]
    sessions.remember_deep_link(
        request,
        DeepLinkLaunch(
            **asdict(synced.info),
            may_configure=course_roles(synced.info.roles).may_configure,
            return_url=dl["deep_link_return_url"],
            data=dl.get("data"),
            accept_types=dl.get("accept_types") if isinstance(dl.get("accept_types"), list) else [],
            accept_multiple=dl.get("accept_multiple") in (True, "true"),
            title=_text(dl.get("title"), 500),
            text=_text(dl.get("text"), 2000),
        ),
    )
    return synced.info.launch_id


def _refuse_page(request: HttpRequest, reason: str, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "lti_tool/launch_error.html",
        {"reason": reason, "message": message, "admin_hint": "", "status": status},
        status=status,
    )


def deep_linking_response(request: HttpRequest, deep_link: DeepLinkLaunch, items: list[DeepLinkItem]) -> HttpResponse:
    """The page that posts the signed LtiDeepLinkingResponse to the platform (one response per deep-link launch).

    `deep_link` is this session's (sessions.current_deep_link): whoever has none tells the user to start again.
    """
    if deep_link.accept_types and "ltiResourceLink" not in deep_link.accept_types:
        return _refuse_page(request, "deep_link_type_refused", "Your platform does not accept tool links here.", 400)
    if len(items) > 1 and not deep_link.accept_multiple:
        return _refuse_page(request, "deep_link_multiple_refused", "Your platform accepts only one item here.", 400)
    registration, deployment = deep_link.registration, deep_link.deployment
    if registration is None or deployment is None or not (registration.is_active and deployment.is_active):
        return _refuse_page(
            request, "registration_disabled", "This tool has been disabled for your platform since you opened it.", 403
        )
    launch_url = tool_url("lti_tool:launch", request)
    payload = []
    for item in items:
        line_item = None
        if item.score_maximum is not None:
            line_item = {
                "scoreMaximum": item.score_maximum,
                "label": item.label or item.title,
                "resourceId": item.resource_id,
                "tag": item.tag,
                "submissionReview": ags.submission_review(),
            }
        payload.append(
            {
                "url": launch_url,
                "title": item.title,
                "text": item.text,
                "custom": {k: str(val) for k, val in item.custom.items()},
                "line_item": line_item,
            }
        )
    settings_claim = {"deep_link_return_url": deep_link.return_url}
    if deep_link.data is not None:
        settings_claim["data"] = deep_link.data
    token = launches.deep_link_response_jwt(
        registration=registration,
        deployment_id=deployment.deployment_id,
        dl_settings=settings_claim,
        items=payload,
    )
    sessions.forget_deep_link(request, deep_link.launch_id)
    return render(request, "lti_tool/deep_link_return.html", {"return_url": deep_link.return_url, "jwt": token})


# --- Registrations ----------------------------------------------------------------------------------------------------
def register_platform(
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    deployment_ids: list[str] = (),  # type: ignore[assignment]
    name: str = "",
    auth_audience: str = "",
    status: str = Registration.Status.ACTIVE,
    registered_by: str = "manual",
    product_family: str = "",
    scopes: str = "",
    openid_configuration: dict | None = None,
) -> Registration:
    """Create or update the registration (issuer, client_id) and add its deployments."""
    for url in (auth_login_url, auth_token_url, key_set_url):
        if not v.url_netloc(url):
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if not issuer or not client_id:
        raise ValueError("issuer and client_id are required")
    with transaction.atomic():
        registration, _ = Registration.objects.update_or_create(
            issuer=issuer,
            client_id=client_id,
            defaults={
                "name": name[:200],
                "auth_login_url": auth_login_url,
                "auth_token_url": auth_token_url,
                "key_set_url": key_set_url,
                "auth_audience": auth_audience,
                "status": status,
                "registered_by": registered_by,
                "product_family": product_family[:64],
                "scopes": scopes,
                "openid_configuration": openid_configuration or {},
            },
        )
        for deployment_id in deployment_ids:
            if deployment_id:
                Deployment.objects.get_or_create(registration=registration, deployment_id=deployment_id[:255])
    return registration


def _set_registration_status(registration: Registration, status: str) -> Registration:
    with transaction.atomic():
        registration.status = status
        registration.save(update_fields=["status", "updated_at"])
    return registration


def _set_deployment_active(deployment: Deployment, active: bool) -> Deployment:
    with transaction.atomic():
        deployment.is_active = active
        deployment.save(update_fields=["is_active"])  # Deployment.save clears `pending` on activation
    return deployment


def approve_registration(registration: Registration) -> Registration:
    """IT approves a pending (or re-enables a disabled) registration."""
    return _set_registration_status(registration, Registration.Status.ACTIVE)


def admit_deployment(registration: Registration, deployment_id: str) -> Deployment:
    """The first launch through a deployment id the tool has not seen records it, under IT's LTI_DEPLOYMENT_POLICY:
    "auto" activates it; "approval" keeps it pending (LaunchRefused) until IT activates it in the admin.

    Either way a registration with no deployment yet accepts its first one: Canvas returns no deployment id at
    registration, and IT approved the registration itself. Raises LaunchRefused for a pending or disabled one.
    """
    with transaction.atomic():
        # Locked, so that of two first launches at once only one is "the first deployment".
        Registration.objects.select_for_update().filter(pk=registration.pk).first()
        deployment = Deployment.objects.filter(registration=registration, deployment_id=deployment_id).first()
        if deployment is None:
            admitted = settings.LTI_DEPLOYMENT_POLICY == "auto" or not registration.deployments.exists()
            deployment = Deployment.objects.create(
                registration=registration, deployment_id=deployment_id[:255], is_active=admitted, pending=not admitted
            )
    v.check_deployment_status(deployment)
    return deployment


def activate_deployment(deployment: Deployment) -> Deployment:
    """IT activates a pending (or re-enables a disabled) deployment."""
    return _set_deployment_active(deployment, True)


def disable_deployment(deployment: Deployment) -> Deployment:
    """Stop all launches through this deployment."""
    return _set_deployment_active(deployment, False)


def disable_registration(registration: Registration) -> Registration:
    """Stop all launches through this registration."""
    return _set_registration_status(registration, Registration.Status.DISABLED)


def register_dynamically(*, openid_configuration: str, registration_token: str, base_url: str) -> Registration:
    """Dynamic Registration: read the platform configuration, apply IT's policy, register, store the registration.

    Policy (settings.LTI_REGISTRATION_POLICY): "open" -> active at once; "allowlist" -> only issuers in
    LTI_REGISTRATION_ALLOWED_ISSUERS, active at once; "approval" (or anything else) -> pending until IT approves.
    Raises dynreg.RegistrationFailed.
    """
    if len(registration_token) > dynreg.MAX_TOKEN_CHARS:
        raise dynreg.RegistrationFailed("token_too_large", "The registration token is too large.")
    policy = settings.LTI_REGISTRATION_POLICY
    platform = dynreg.fetch_platform_configuration(openid_configuration, registration_token)
    if policy == "allowlist":
        allowed = {i.rstrip("/") for i in settings.LTI_REGISTRATION_ALLOWED_ISSUERS}
        if platform.issuer.rstrip("/") not in allowed:
            raise dynreg.RegistrationFailed(
                "issuer_not_allowed",
                f"Registration from {platform.issuer} is not allowed here. Ask the tool's IT team to allow it.",
                status=403,
            )
    body = dynreg.tool_registration_body(base_url, platform)
    answer = dynreg.post_tool_registration(platform, body, registration_token)
    account = platform.raw.get(dynreg.PLATFORM_CONFIG_KEY, {})
    account_name = account.get("https://canvas.instructure.com/lti/account_name") if isinstance(account, dict) else ""
    name = account_name if isinstance(account_name, str) and account_name else (
        f"{platform.product_family or 'LMS'} {v.url_netloc(platform.issuer)}"
    )
    return register_platform(
        issuer=platform.issuer,
        client_id=answer.client_id,
        auth_login_url=platform.authorization_endpoint,
        auth_token_url=platform.token_endpoint,
        key_set_url=platform.jwks_uri,
        deployment_ids=[answer.deployment_id] if answer.deployment_id else [],
        name=name,
        status=Registration.Status.ACTIVE if policy in ("open", "allowlist") else Registration.Status.PENDING,
        registered_by="dynamic",
        product_family=platform.product_family,
        scopes=answer.scopes,
        openid_configuration=platform.raw,
    )
