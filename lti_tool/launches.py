"""The one place that imports pylti1p3.

pylti1p3 does the parts it does well: the OIDC login redirect (state, nonce, the state cookie) through a ToolConf
built from our Registration/Deployment rows with cache-backed storage, and the signed LtiDeepLinkingResponse JWT. The
launch itself is validated by `lti_tool.validation` (PyJWT), which closes pylti1p3 2.0.0's measured gaps; this
module ties state, token, nonce and message checks together in `validate_launch`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoOIDCLogin
from pylti1p3.contrib.django.cookie import DjangoCookieService
from pylti1p3.contrib.django.request import DjangoRequest
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.deployment import Deployment as PyltiDeployment
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.lineitem import LineItem
from pylti1p3.registration import Registration as PyltiRegistration
from pylti1p3.tool_config.abstract import ToolConfAbstract

from lti_tool import validation
from lti_tool.claims import C_DEPLOYMENT_ID
from lti_tool.keys import signing_key
from lti_tool.models import Deployment, Registration
from lti_tool.validation import LaunchRefused

STATE_CACHE_PREFIX = "lti:state:"
# A login must turn into a launch within this time (pylti1p3's state cookie lives 5 minutes).
LOGIN_STATE_TTL_S = 600
STATE_COOKIE_PREFIX = "lti1p3-"
MAX_STATE_CHARS = 200
# Used nonces are kept until their tokens expire; about one launch in a hundred sweeps the expired rows.
NONCE_PURGE_PROBABILITY = 0.01


# --- ToolConf from the database ---------------------------------------------------------------------------------------
def to_pylti_registration(registration: Registration, *, with_key: bool = False) -> PyltiRegistration:
    """A pylti1p3 Registration for one of our rows (with the tool's signing key when it must sign)."""
    reg = _KeyedRegistration()
    reg.set_issuer(registration.issuer).set_client_id(registration.client_id)
    reg.set_auth_login_url(registration.auth_login_url).set_auth_token_url(registration.auth_token_url)
    reg.set_key_set_url(registration.key_set_url)
    if registration.auth_audience:
        reg.set_auth_audience(registration.auth_audience)
    if with_key:
        key = signing_key()
        reg.set_tool_private_key(key.private_key_pem)
        reg.kid = key.kid
    return reg


class _KeyedRegistration(PyltiRegistration):
    kid: str | None = None

    def get_kid(self) -> str | None:
        return self.kid


class DbToolConf(ToolConfAbstract):
    """pylti1p3 tool configuration read from Registration/Deployment rows (many client_ids per issuer)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: Registration | None = None

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> PyltiRegistration | None:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> PyltiRegistration | None:
        qs = Registration.objects.filter(issuer=iss)
        if client_id:
            qs = qs.filter(client_id=client_id)
        rows = list(qs[:2])
        if len(rows) != 1:  # none, or ambiguous without a client_id (Canvas cloud shares one issuer)
            return None
        self.found = rows[0]
        return to_pylti_registration(rows[0])

    def find_deployment(self, iss: str, deployment_id: str) -> PyltiDeployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> PyltiDeployment | None:
        qs = Deployment.objects.active().filter(registration__issuer=iss, deployment_id=deployment_id)
        if client_id:
            qs = qs.filter(registration__client_id=client_id)
        if not qs.exists():
            return None
        return PyltiDeployment().set_deployment_id(deployment_id)


# --- Login ------------------------------------------------------------------------------------------------------------
@dataclass
class LoginStart:
    """A prepared OIDC authorization request: where to send the browser, and the cookies to set."""

    auth_url: str
    state: str
    nonce: str
    registration: Registration
    storage_target: str
    auth_origin: str
    _cookies: DjangoCookieService = field(repr=False)

    def apply_cookies(self, response: HttpResponse) -> HttpResponse:
        """Set the state (and pylti1p3 session) cookies on whatever response the view returns."""
        self._cookies.update_response(response)
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Canvas moved its OIDC endpoints from canvas[.beta|.test].instructure.com to sso[.beta|.test].canvaslms.com (both
# still answer); the platform-storage frame (post_message_forwarding) is served from the new host only.
CANVAS_AUTH_HOSTS = {
    "canvas.instructure.com": "sso.canvaslms.com",
    "canvas.beta.instructure.com": "sso.beta.canvaslms.com",
    "canvas.test.instructure.com": "sso.test.canvaslms.com",
}


def storage_origin(auth_login_url: str) -> str:
    """The origin platform-storage messages are addressed to: the OIDC endpoint's, or Canvas's new one for a
    registration that still names the old auth domain (a message to the old origin would be dropped unread)."""
    parts = urlsplit(auth_login_url)
    host = CANVAS_AUTH_HOSTS.get((parts.hostname or "").lower())
    if host and parts.scheme == "https":
        return f"https://{host}"
    return _origin(auth_login_url)


def start_login(request: HttpRequest, *, launch_url: str, storage_target: str = "") -> LoginStart:
    """Validate a third-party-initiated login and prepare the redirect to the platform (pylti1p3 builds it)."""
    params = request.GET if request.method == "GET" else request.POST
    iss = params.get("iss", "")
    if not iss:
        raise LaunchRefused("login_iss_missing", "The login request does not name the platform (iss).")
    if not params.get("login_hint"):
        raise LaunchRefused("login_hint_missing", "The login request has no login_hint.")
    client_id = params.get("client_id") or None
    tool_conf = DbToolConf()
    if tool_conf.find_registration_by_params(iss, client_id) is None:
        raise validation.unknown_registration(iss, client_id)
    registration = tool_conf.found
    assert registration is not None
    # Pending or disabled registrations stop here, before the round trip to the LMS.
    validation.check_registration_status(registration)
    django_request = DjangoRequest(request)
    cookies = DjangoCookieService(django_request)
    login = DjangoOIDCLogin(django_request, tool_conf, cookie_service=cookies)
    # pylti1p3 keeps its nonce in the cache (not the Django session, whose cookie an iframe may lose).
    login.set_launch_data_storage(DjangoCacheDataStorage())
    login.set_launch_data_lifetime(LOGIN_STATE_TTL_S)
    try:
        auth_url = login.get_redirect_object(launch_url).get_redirect_url()
    except (OIDCException, LtiException) as exc:
        raise LaunchRefused("login_invalid", f"The login request is not valid: {exc}") from exc
    query = parse_qs(urlsplit(auth_url).query)
    state, nonce = query["state"][0], query["nonce"][0]
    auth_origin = storage_origin(registration.auth_login_url)
    cache.set(
        STATE_CACHE_PREFIX + state,
        {
            "nonce": nonce,
            "registration_pk": registration.pk,
            "storage_target": storage_target,
            "auth_origin": auth_origin,
        },
        LOGIN_STATE_TTL_S,
    )
    return LoginStart(
        auth_url=auth_url,
        state=state,
        nonce=nonce,
        registration=registration,
        storage_target=storage_target,
        auth_origin=auth_origin,
        _cookies=cookies,
    )


# --- Launch -----------------------------------------------------------------------------------------------------------
class PlatformStorageCheck(Exception):
    """The state cookie did not arrive but the login used platform storage: the browser must check state there."""

    def __init__(self, state: str, storage_target: str, auth_origin: str) -> None:
        super().__init__(state)
        self.state = state
        self.storage_target = storage_target
        self.auth_origin = auth_origin


@dataclass
class ValidatedLaunch:
    """A launch that passed every check."""

    launch_id: str
    message_type: str
    claims: dict[str, Any]
    registration: Registration
    deployment: Deployment | None  # None: the first launch through this deployment id (created by the service)
    deployment_id: str


def check_state(request: HttpRequest) -> dict[str, Any]:
    """The posted state must be one we issued, unused, and carried by this browser (cookie or platform storage)."""
    state = request.POST.get("state", "")
    if not state or len(state) > MAX_STATE_CHARS:
        raise LaunchRefused("state_missing", "The launch has no state parameter.")
    record = cache.get(STATE_CACHE_PREFIX + state)
    if record is None:
        raise LaunchRefused(
            "state_unknown",
            "This launch does not match a login started here, or it took too long. Please launch again.",
        )
    cookie = request.COOKIES.get(STATE_COOKIE_PREFIX + state)
    if cookie == state:
        return record
    if record.get("storage_target") and request.POST.get("lti_storage_verified") == "1":
        return record  # the platform's postMessage storage held our state (checked by lti_tool/storage_launch.js)
    if cookie is None:
        if record.get("storage_target") and request.POST.get("lti_storage_target"):
            raise PlatformStorageCheck(state, record["storage_target"], record["auth_origin"])
        raise LaunchRefused(
            "state_cookie_missing",
            "Your browser did not send the tool's login cookie (it may block cookies inside the course page). "
            "Please launch again, or open the activity in a new window.",
        )
    raise LaunchRefused("state_mismatch", "The launch does not belong to this browser's login. Please launch again.")


def validate_launch(request: HttpRequest, *, tool_netlocs: set[str]) -> ValidatedLaunch:
    """Every check of an id_token launch POST; raises LaunchRefused (or PlatformStorageCheck)."""
    id_token = request.POST.get("id_token", "")
    if not id_token:
        error = request.POST.get("error", "")
        if error:
            raise LaunchRefused(
                "platform_error",
                f"Your platform refused the login: {error[:100]} {request.POST.get('error_description', '')[:300]}",
            )
        raise LaunchRefused("id_token_missing", "The launch has no id_token.")
    if len(id_token) > validation.MAX_ID_TOKEN_CHARS:
        raise LaunchRefused("token_too_large", "The launch token is larger than any real LTI launch.")
    record = check_state(request)
    verified = validation.verify_token(id_token)
    if verified.registration.pk != record.get("registration_pk"):
        raise LaunchRefused("state_mismatch", "The launch comes from another platform than its login.", status=400)
    # From here the token is authentic: use up the nonce and the state whatever happens next.
    cache.delete(STATE_CACHE_PREFIX + request.POST["state"])
    validation.consume_nonce(verified, record["nonce"])
    claims = verified.claims
    message_type = validation.check_message(claims, tool_netlocs=tool_netlocs)
    deployment_id = claims[C_DEPLOYMENT_ID]
    deployment = validation.check_deployment(verified.registration, deployment_id)
    launch_id = uuid.uuid4().hex
    if random.random() < NONCE_PURGE_PROBABILITY:
        validation.purge_used_nonces()
    return ValidatedLaunch(
        launch_id=launch_id,
        message_type=message_type,
        claims=claims,
        registration=verified.registration,
        deployment=deployment,
        deployment_id=deployment_id,
    )


# --- Deep linking response --------------------------------------------------------------------------------------------
class _Resource(DeepLinkResource):
    _text: str = ""

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        if not data.get("custom"):
            data.pop("custom", None)  # Moodle 4.5 fails on "custom": {}
        for key in ("title", "url"):
            if data.get(key) is None:
                data.pop(key, None)
        if self._text:
            data["text"] = self._text
        return data


def deep_link_response_jwt(
    *,
    registration: Registration,
    deployment_id: str,
    dl_settings: dict[str, Any],
    items: list[dict[str, Any]],
) -> str:
    """The signed LtiDeepLinkingResponse JWT (items: dicts with url, title, text, custom, line_item)."""
    deep_link = DeepLink(to_pylti_registration(registration, with_key=True), deployment_id, dl_settings)  # type: ignore[arg-type]
    resources = []
    for item in items:
        res = _Resource()
        res.set_url(item["url"]).set_title(item["title"])
        res._text = item.get("text", "")
        if item.get("custom"):
            res.set_custom_params(dict(item["custom"]))
        line_item = item.get("line_item")
        if line_item:
            li = LineItem().set_score_maximum(line_item["scoreMaximum"])
            for key, setter in (("label", li.set_label), ("resourceId", li.set_resource_id), ("tag", li.set_tag)):
                if line_item.get(key):
                    setter(line_item[key])
            if review := line_item.get("submissionReview"):
                li.set_submission_review(review["reviewableStatus"], label=review.get("label"))
            res.set_lineitem(li)
        resources.append(res)
    message = deep_link.get_message_jwt(resources)
    if message.get("https://purl.imsglobal.org/spec/lti-dl/claim/data") is None:
        message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data", None)
    return deep_link.encode_jwt(message)
