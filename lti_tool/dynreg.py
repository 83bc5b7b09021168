"""LTI Dynamic Registration 1.0, the tool side: read the platform's OpenID configuration, post our registration.

Platform quirks handled here:
- Canvas wants the registration token as a bearer token on the configuration GET too, and Canvas cloud's issuer
  (https://canvas.instructure.com) is not a prefix of the configuration URL (https://<school>.instructure.com/...).
  Canvas returns no deployment_id: the deployment appears at the first launch.
- Moodle returns a deployment_id and keeps the tool pending on its side until its admin activates it. Older Moodle
  versions publish a platform-configuration key with a trailing space, no authorization_endpoint and
  messages_supported as plain strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse

from lti_tool import outbound
from lti_tool.validation import url_netloc

PLATFORM_CONFIG_KEY = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG_KEY = "https://purl.imsglobal.org/spec/lti-tool-configuration"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_SCOPES = [*AGS_SCOPES, NRPS_SCOPE]
TOOL_CLAIMS = ["sub", "iss", "name", "given_name", "family_name", "email"]
CANVAS_CLOUD_ISSUERS = frozenset(
    {"https://canvas.instructure.com", "https://canvas.beta.instructure.com", "https://canvas.test.instructure.com"}
)
MAX_TOKEN_CHARS = 8192

logger = logging.getLogger("lti_tool.dynreg")
CANVAS_COURSE_NAV_DEFAULT_ENABLED = "https://canvas.instructure.com/lti/course_navigation/default_enabled"


class RegistrationFailed(Exception):
    """Dynamic Registration cannot go on; the message is shown to the platform administrator."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass
class PlatformConfiguration:
    """The parts of a platform's OpenID configuration the tool uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    product_family: str = ""
    messages_supported: list[str] = field(default_factory=list)
    scopes_supported: list[str] = field(default_factory=list)
    authorization_server: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def _strip_keys(value: Any) -> Any:
    """Keys with stray whitespace (an old Moodle publishes "...lti-platform-configuration ") are normalised."""
    if isinstance(value, dict):
        return {str(k).strip(): _strip_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_keys(v) for v in value]
    return value


def is_canvas_cloud(issuer: str) -> bool:
    return issuer.rstrip("/") in CANVAS_CLOUD_ISSUERS


def issuer_matches_url(issuer: str, config_url: str) -> bool:
    """DR 3.5.1: the issuer must be a prefix of the configuration URL (Canvas cloud: any *.instructure.com host)."""
    if config_url.startswith(issuer.rstrip("/") + "/") or config_url == issuer:
        return True
    if is_canvas_cloud(issuer):
        parts = urlsplit(config_url)
        return parts.scheme == "https" and (parts.hostname or "").endswith(".instructure.com")
    return False


def fetch_platform_configuration(config_url: str, registration_token: str = "") -> PlatformConfiguration:
    """GET and parse the platform's OpenID configuration (bearer token when given: Canvas requires it)."""
    if not url_netloc(config_url) or len(config_url) > 1000:
        raise RegistrationFailed("config_url_invalid", "openid_configuration is not an http(s) URL.")
    headers = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    try:
        raw = outbound.fetch_json("GET", config_url, headers=headers)
    except outbound.PlatformAddressRefused as exc:
        raise RegistrationFailed("platform_address_refused", f"The configuration URL was refused: {exc}") from exc
    except outbound.FetchError as exc:
        raise RegistrationFailed("config_unavailable", f"The platform configuration could not be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise RegistrationFailed("config_invalid", "The platform configuration is not a JSON object.")
    config = parse_platform_configuration(_strip_keys(raw))
    if not issuer_matches_url(config.issuer, config_url):
        # The issuer goes to the log, not the page: nothing a remote server wrote is shown to the (anonymous) caller.
        logger.warning("Issuer mismatch", extra={"event": "issuer_mismatch", "issuer": config.issuer[:255]})
        raise RegistrationFailed(
            "issuer_mismatch",
            f"The platform's issuer (in the tool's log) is not the start of its configuration URL {config_url!r}.",
        )
    return config


def _required_url(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not url_netloc(value) or len(value) > 500:
        raise RegistrationFailed("config_invalid", f"The platform configuration has no valid {key}.")
    return value


def parse_platform_configuration(config: dict[str, Any]) -> PlatformConfiguration:
    """Read an OpenID configuration defensively (string or object messages, missing Moodle auth endpoint)."""
    issuer = config.get("issuer")
    if not isinstance(issuer, str) or not url_netloc(issuer) or len(issuer) > 255:
        raise RegistrationFailed("config_invalid", "The platform configuration has no valid issuer.")
    platform = config.get(PLATFORM_CONFIG_KEY)
    platform = platform if isinstance(platform, dict) else {}
    product = platform.get("product_family_code")
    product = product.strip().lower()[:64] if isinstance(product, str) else ""
    if not isinstance(config.get("authorization_endpoint"), str):
        # Old Moodle publishes none; its OIDC endpoint is always wwwroot/mod/lti/auth.php (issuer = wwwroot).
        config = {**config, "authorization_endpoint": issuer.rstrip("/") + "/mod/lti/auth.php"}
    messages = []
    for message in platform.get("messages_supported", []) or []:
        kind = message.get("type") if isinstance(message, dict) else message
        if isinstance(kind, str):
            messages.append(kind.strip())
    scopes = config.get("scopes_supported")
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=_required_url(config, "authorization_endpoint"),
        token_endpoint=_required_url(config, "token_endpoint"),
        jwks_uri=_required_url(config, "jwks_uri"),
        registration_endpoint=_required_url(config, "registration_endpoint"),
        product_family=product,
        messages_supported=messages,
        scopes_supported=[s for s in scopes if isinstance(s, str)] if isinstance(scopes, list) else [],
        authorization_server=config.get("authorization_server") if isinstance(config.get("authorization_server"), str)
        else "",
        raw=config,
    )


def tool_registration_body(base_url: str, platform: PlatformConfiguration) -> dict[str, Any]:
    """Our OIDC client registration (DR 3.3) with LTI tool configuration and Canvas extensions."""
    launch_url = base_url + reverse("lti_tool:launch")
    scopes = TOOL_SCOPES
    if platform.scopes_supported:
        # Ask only for what the platform offers (Canvas refuses unknown scopes).
        scopes = [s for s in TOOL_SCOPES if s in platform.scopes_supported] or TOOL_SCOPES
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base_url + reverse("lti_tool:login"),
        "redirect_uris": [launch_url],
        "client_name": settings.LTI_TOOL_TITLE,
        "jwks_uri": base_url + reverse("lti_tool:jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIG_KEY: {
            "domain": url_netloc(base_url),
            "target_link_uri": launch_url,
            "description": "Timed ResNet challenges: multiple-choice questions and PyTorch code, graded automatically.",
            "claims": TOOL_CLAIMS,
            "messages": [
                {
                    "type": "LtiResourceLinkRequest",
                    "target_link_uri": launch_url,
                    "label": settings.LTI_TOOL_TITLE,
                    "placements": ["course_navigation"],
                    # Canvas (app/models/lti/ims/registration.rb): the course menu link starts hidden; a course
                    # navigation launch is never graded, teachers switch it on only if they want practice there.
                    CANVAS_COURSE_NAV_DEFAULT_ENABLED: False,
                },
                {
                    "type": "LtiDeepLinkingRequest",
                    "target_link_uri": launch_url,
                    "label": settings.LTI_TOOL_TITLE,
                    "placements": ["assignment_selection", "link_selection"],
                },
            ],
            "https://canvas.instructure.com/lti/privacy_level": "public",
        },
    }


@dataclass
class PlatformRegistration:
    """What the platform answered to our registration."""

    client_id: str
    deployment_id: str
    scopes: str
    raw: dict[str, Any]


def post_tool_registration(
    platform: PlatformConfiguration, body: dict[str, Any], registration_token: str = ""
) -> PlatformRegistration:
    """POST the registration to the platform's registration endpoint; returns the client_id it issued."""
    headers = {"Content-Type": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        raw = outbound.fetch_json("POST", platform.registration_endpoint, headers=headers, json=body)
    except outbound.PlatformAddressRefused as exc:
        raise RegistrationFailed("platform_address_refused", f"The registration endpoint was refused: {exc}") from exc
    except outbound.FetchError as exc:
        raise RegistrationFailed("registration_refused", f"The platform refused the registration: {exc}") from exc
    raw = _strip_keys(raw) if isinstance(raw, dict) else {}
    client_id = raw.get("client_id")
    if isinstance(client_id, int):
        client_id = str(client_id)
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
        raise RegistrationFailed("registration_invalid", "The platform's answer has no client_id.")
    tool_config = raw.get(TOOL_CONFIG_KEY)
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    if isinstance(deployment_id, int):
        deployment_id = str(deployment_id)
    scope = raw.get("scope")
    return PlatformRegistration(
        client_id=client_id,
        deployment_id=deployment_id[:255] if isinstance(deployment_id, str) else "",
        scopes=scope if isinstance(scope, str) else body["scope"],
        raw=raw,
    )
