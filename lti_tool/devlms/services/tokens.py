"""The token endpoint (client-credentials grants with a signed assertion) and service authentication."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from lti_tool.devlms import jose
from lti_tool.devlms.models import AccessToken, Style, Tool, UsedJti
from lti_tool.devlms.services.base import ACCESS_TOKEN_LIFE_S, Platform, PlatformError
from lti_tool.outbound import has_nul


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
