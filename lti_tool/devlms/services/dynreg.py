"""Dynamic Registration as the development LMS runs it: registration tokens, OpenID configuration, clients."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from lti_tool.devlms.models import RegistrationToken, Style, Tool
from lti_tool.devlms.services.base import SUPPORTED_SCOPES, Platform, PlatformError


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
