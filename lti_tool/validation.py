"""Complete validation of an LTI 1.3 id_token (IMS Security Framework 5.1.3 and LTI Core 5.3/5.4).

This closes the gaps measured in pylti1p3 2.0.0 (replayed nonces accepted, no `exp` required, extra audiences and
`azp` unchecked, zero clock leeway, no JWKS refetch on an unknown `kid`, HTTP 500 on an unknown issuer). Every
failure raises `LaunchRefused` with a stable reason code (logged and counted), a message for the person who launched
and a hint for the LMS administrator. Nothing here writes to the database except the one-time nonce row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from lti_tool import outbound
from lti_tool.claims import (
    C_CONTEXT,
    C_DEPLOYMENT_ID,
    C_DL_SETTINGS,
    C_FOR_USER,
    C_MESSAGE_TYPE,
    C_RESOURCE_LINK,
    C_ROLES,
    C_TARGET_LINK_URI,
    C_VERSION,
    DEEP_LINKING_REQUEST,
    LTI_VERSION,
    MESSAGE_TYPES,
    RESOURCE_LINK_REQUEST,
    SUBMISSION_REVIEW_REQUEST,
)
from lti_tool.models import Deployment, Registration, UsedNonce

# An id_token with a roster-sized custom claim is a few KB; anything near this bound is not a real launch.
MAX_ID_TOKEN_CHARS = 65_536
MAX_ID_CHARS = 255  # ids are stored in CharField(255)
JWKS_CACHE_S = 3600
# After an unknown kid we refetch the platform JWKS at once, but not more than once per this many seconds per
# registration: a stream of forged tokens with random kids must not turn us into a request amplifier.
JWKS_REFETCH_MIN_INTERVAL_S = 10


# Refusals of a launch that was itself sound (signed, fresh, for a known platform): the LMS admin's usual checklist
# (ids, keys, clocks) does not apply to them.
SOUND_LAUNCH_REASONS = frozenset(
    {"registration_pending", "registration_disabled", "deployment_pending", "deployment_disabled"}
)


class LaunchRefused(Exception):
    """A launch (or login) that must be refused: `reason` is a stable code for logs and metrics."""

    def __init__(self, reason: str, message: str, *, status: int = 400, admin_hint: str = "") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status
        self.admin_hint = admin_hint


@dataclass
class VerifiedToken:
    """An id_token whose signature, issuer, audience, times and nonce have been verified."""

    claims: dict[str, Any]
    registration: Registration
    client_id: str


# --- Helpers ----------------------------------------------------------------------------------------------------------
def unknown_registration(iss: str, client_id: str | None) -> LaunchRefused:
    """The refusal of a login or launch from a platform (or client id) with no registration here; the reason says
    which of the two IT must register."""
    known_issuer = Registration.objects.filter(issuer=iss).exists()
    if client_id:
        which = f" and client_id {client_id[:200]!r}"
    else:  # a login may leave client_id out, which is ambiguous once an issuer has several registrations
        which = " (several exist: send client_id)" if known_issuer else ""
    return LaunchRefused(
        "client_id_unknown" if known_issuer else "issuer_unknown",
        "This tool is not registered for the platform that started the launch.",
        status=401,
        admin_hint=(
            f"No registration for issuer {iss[:200]!r}{which}. Register the tool by Dynamic Registration at "
            "/lti/register/ or with the register_platform command."
        ),
    )


def _str_claim(claims: dict[str, Any], name: str, *, max_len: int = MAX_ID_CHARS) -> str | None:
    value = claims.get(name)
    if isinstance(value, str) and value and len(value) <= max_len:
        return value
    return None


def url_netloc(url: str) -> str:
    """The host[:port] of a URL, lower-cased ('' when it is not an absolute http(s) URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https"):
        return ""
    return parts.netloc.lower()


def decode_unverified(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT without verifying anything (only to find the registration and key)."""
    if len(id_token) > MAX_ID_TOKEN_CHARS:
        raise LaunchRefused("token_too_large", "The launch token is larger than any real LTI launch.")
    try:
        header = jwt.get_unverified_header(id_token)
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError, UnicodeError) as exc:
        raise LaunchRefused(
            "token_malformed",
            "The launch token is not a valid JWT.",
            admin_hint="The platform must post a signed JWT in the id_token field.",
        ) from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise LaunchRefused("token_malformed", "The launch token is not a valid JWT.")
    if outbound.has_nul(claims):
        raise LaunchRefused("token_malformed", "The launch token holds a NUL character in a claim.",
                            admin_hint="The platform sent a claim (a name or title?) containing a NUL character.")
    return header, claims


# --- Platform keys ----------------------------------------------------------------------------------------------------
def _jwks_cache_key(registration: Registration) -> str:
    # Per registration, not per URL: a registration re-created (or re-pointed) never sees another's cached keys.
    url_hash = hashlib.sha256(registration.key_set_url.encode()).hexdigest()[:32]
    return f"lti:jwks:{registration.pk}:{url_hash}"


def platform_jwks(registration: Registration, *, refresh: bool = False) -> dict[str, Any]:
    """The platform's JWKS, cached for JWKS_CACHE_S (fetched again when `refresh`)."""
    url = registration.key_set_url
    key = _jwks_cache_key(registration)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    try:
        jwks = outbound.fetch_json("GET", url)
    except outbound.FetchError as exc:
        raise LaunchRefused(
            "jwks_unavailable",
            "The tool could not fetch your platform's public keys, so it cannot check this launch.",
            status=401,
            admin_hint=f"Check the registration's JWKS URL ({url}). Detail: {exc}",
        ) from exc
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise LaunchRefused(
            "jwks_unavailable",
            "Your platform's public key set is not valid.",
            status=401,
            admin_hint=f"{url} must answer a JSON Web Key Set ({{\"keys\": [...]}}).",
        )
    cache.set(key, jwks, JWKS_CACHE_S)
    return jwks


def _find_jwk(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            return jwk
    return None


def platform_key(registration: Registration, kid: str) -> Any:
    """The platform public key for `kid`; an unknown kid refetches the JWKS once (key rotation)."""
    url = registration.key_set_url
    jwk = _find_jwk(platform_jwks(registration), kid)
    if jwk is None and cache.add(_jwks_cache_key(registration) + ":refetch", 1, JWKS_REFETCH_MIN_INTERVAL_S):
        jwk = _find_jwk(platform_jwks(registration, refresh=True), kid)
    if jwk is None:
        raise LaunchRefused(
            "kid_unknown",
            "The launch was signed with a key your platform does not publish.",
            status=401,
            admin_hint=f"The token's kid {kid[:80]!r} is not in {url}. Check the registration's JWKS URL.",
        )
    if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
        raise LaunchRefused(
            "key_unsuitable", "The platform key for this launch is not an RS256 signing key.", status=401
        )
    try:
        return jwt.PyJWK(jwk, algorithm="RS256").key
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise LaunchRefused("key_unsuitable", "The platform key for this launch cannot be read.", status=401) from exc


# --- The token --------------------------------------------------------------------------------------------------------
def find_registration(claims: dict[str, Any]) -> tuple[Registration, str]:
    """Resolve (iss, aud/azp) to a registration, enforcing the audience rules (SF 5.1.3 steps 2-5)."""
    iss = _str_claim(claims, "iss")
    if iss is None:
        raise LaunchRefused("iss_missing", "The launch token has no issuer.", status=401)
    aud = claims.get("aud")
    if isinstance(aud, str):
        auds = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        auds = list(aud)
    else:
        raise LaunchRefused("aud_missing", "The launch token has no audience.", status=401)
    azp = claims.get("azp")
    if len(auds) > 1:
        if not azp:
            raise LaunchRefused(
                "azp_missing",
                "The launch token names several audiences but no authorized party (azp).",
                status=401,
            )
        if azp not in auds:
            raise LaunchRefused("azp_mismatch", "The launch token's authorized party is not an audience.", status=401)
        client_id = azp
    else:
        client_id = auds[0]
        if azp is not None and azp != client_id:
            raise LaunchRefused("azp_mismatch", "The launch token's authorized party is not this tool.", status=401)
    registration = Registration.objects.filter(issuer=iss, client_id=client_id).first()
    if registration is None:
        raise unknown_registration(iss, client_id)
    if len(auds) > 1:
        # Other audiences are trusted only when they are this same tool registered on the same platform.
        others = set(auds) - {client_id}
        trusted = set(
            Registration.objects.filter(issuer=iss, client_id__in=others).values_list("client_id", flat=True)
        )
        if others - trusted:
            raise LaunchRefused(
                "aud_untrusted", "The launch token is also addressed to parties this tool does not trust.", status=401
            )
    return registration, client_id


_JWT_ERRORS: list[tuple[type[Exception], str, str]] = [
    (jwt.ExpiredSignatureError, "token_expired", "The launch token has expired. Please launch again."),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", "The launch token is dated in the future."),
    (jwt.InvalidAudienceError, "aud_mismatch", "The launch token is not addressed to this tool."),
    (jwt.InvalidIssuerError, "iss_mismatch", "The launch token's issuer does not match."),
    (jwt.InvalidSignatureError, "signature_invalid", "The launch token's signature is not valid."),
]


def verify_token(id_token: str) -> VerifiedToken:
    """Verify an id_token's algorithm, key, signature, issuer, audience, azp and times (nonce: see consume_nonce)."""
    header, unverified = decode_unverified(id_token)
    if header.get("alg") != "RS256":
        raise LaunchRefused(
            "alg_not_allowed",
            "The launch token is not signed with RS256.",
            status=401,
            admin_hint="LTI 1.3 platforms must sign id_tokens with RS256.",
        )
    registration, client_id = find_registration(unverified)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_ID_CHARS:
        raise LaunchRefused("kid_missing", "The launch token does not say which key signed it (kid).", status=401)
    key = platform_key(registration, kid)
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=registration.issuer,
            leeway=settings.LTI_CLOCK_LEEWAY_S,
            options={"require": ["exp", "iat", "iss", "aud"], "verify_sub": False, "verify_jti": False},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRefused(
            f"{exc.claim}_missing", f"The launch token has no {exc.claim!r} claim.", status=401
        ) from exc
    except jwt.PyJWTError as exc:
        for exc_type, reason, message in _JWT_ERRORS:
            if isinstance(exc, exc_type):
                raise LaunchRefused(reason, message, status=401, admin_hint=str(exc)) from exc
        raise LaunchRefused("signature_invalid", "The launch token could not be verified.", status=401) from exc
    if claims.get("iat") is not None and not isinstance(claims["iat"], (int, float)):
        raise LaunchRefused("iat_missing", "The launch token's iat is not a time.", status=401)
    return VerifiedToken(claims=claims, registration=registration, client_id=client_id)


def consume_nonce(verified: VerifiedToken, expected_nonce: str) -> None:
    """The nonce must be the one issued at login and is used up (a replay is refused even with a fresh state)."""
    nonce = _str_claim(verified.claims, "nonce")
    if nonce is None:
        raise LaunchRefused("nonce_missing", "The launch token has no nonce.", status=401)
    if nonce != expected_nonce:
        raise LaunchRefused(
            "nonce_mismatch", "The launch token does not belong to this login. Please launch again.", status=401
        )
    exp = verified.claims.get("exp")
    expires_at = timezone.now() + timedelta(seconds=settings.LTI_CLOCK_LEEWAY_S + 3600)
    if isinstance(exp, (int, float)):
        expires_at = max(
            expires_at, datetime.fromtimestamp(exp, tz=UTC) + timedelta(hours=1)
        )
    try:
        with transaction.atomic():
            UsedNonce.objects.create(issuer=verified.registration.issuer, nonce=nonce, expires_at=expires_at)
    except IntegrityError as exc:
        raise LaunchRefused(
            "nonce_replayed", "This launch token has already been used. Please launch again.", status=401
        ) from exc


def purge_used_nonces() -> int:
    """Delete nonce rows whose tokens have expired anyway; returns how many."""
    deleted, _ = UsedNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


# --- Message claims ---------------------------------------------------------------------------------------------------
def check_message(claims: dict[str, Any], *, tool_netlocs: set[str]) -> str:
    """Message type, version, deployment, target_link_uri and the claims each message type requires."""
    message_type = claims.get(C_MESSAGE_TYPE)
    if message_type not in MESSAGE_TYPES:
        raise LaunchRefused(
            "message_type_unsupported",
            "This tool does not handle this kind of LTI message.",
            admin_hint=f"Supported message types: {', '.join(sorted(MESSAGE_TYPES))}; got {str(message_type)[:80]!r}.",
        )
    if claims.get(C_VERSION) != LTI_VERSION:
        raise LaunchRefused(
            "version_unsupported",
            "Only LTI 1.3.0 launches are supported.",
            admin_hint="The version claim must be 1.3.0.",
        )
    if _str_claim(claims, C_DEPLOYMENT_ID) is None:
        raise LaunchRefused("deployment_id_missing", "The launch names no deployment.")
    target = claims.get(C_TARGET_LINK_URI)
    if not isinstance(target, str) or not target:
        raise LaunchRefused("target_link_uri_missing", "The launch has no target_link_uri.")
    if url_netloc(target) not in tool_netlocs:
        raise LaunchRefused(
            "target_link_uri_invalid",
            "The launch is meant for another tool.",
            admin_hint=f"target_link_uri {target[:200]!r} does not point at this tool.",
        )
    if _str_claim(claims, "sub") is None:
        raise LaunchRefused("sub_missing", "The launch does not identify the user (sub).",
                            admin_hint="Anonymous launches are not supported: the platform must send sub.")
    roles = claims.get(C_ROLES)
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise LaunchRefused("roles_missing", "The launch does not carry the user's roles.")
    if message_type in (RESOURCE_LINK_REQUEST, SUBMISSION_REVIEW_REQUEST):
        link = claims.get(C_RESOURCE_LINK)
        if not isinstance(link, dict) or _str_claim(link, "id") is None:
            raise LaunchRefused("resource_link_missing", "The launch does not name the link it came from.")
    if message_type == DEEP_LINKING_REQUEST:
        dl = claims.get(C_DL_SETTINGS)
        if not isinstance(dl, dict) or not url_netloc(str(dl.get("deep_link_return_url", ""))):
            raise LaunchRefused(
                "deep_linking_settings_missing", "The deep-linking launch has no deep_linking_settings return URL."
            )
    if message_type == SUBMISSION_REVIEW_REQUEST:
        for_user = claims.get(C_FOR_USER)
        if not isinstance(for_user, dict) or _str_claim(for_user, "user_id") is None:
            raise LaunchRefused("for_user_missing", "The submission review does not say whose submission it is.")
    context = claims.get(C_CONTEXT)
    if context is not None and (not isinstance(context, dict) or _str_claim(context, "id") is None):
        raise LaunchRefused("context_invalid", "The launch's context claim has no id.")
    return message_type


def check_registration_status(registration: Registration) -> None:
    """A pending or disabled registration launches nothing (403 with a clear page)."""
    if registration.status == Registration.Status.PENDING:
        raise LaunchRefused(
            "registration_pending",
            "This tool has been registered for your platform and is waiting for IT approval.",
            status=403,
            admin_hint="An administrator of the tool must approve the registration in the tool's admin.",
        )
    if not registration.is_active:
        raise LaunchRefused(
            "registration_disabled",
            "This tool has been disabled for your platform.",
            status=403,
            admin_hint="The registration is disabled in the tool's admin.",
        )


def check_deployment(registration: Registration, deployment_id: str) -> Deployment | None:
    """Registration and deployment must be usable. None: a deployment id the tool has not seen, which
    services.admit_deployment records and accepts or refuses under IT's policy (LTI_DEPLOYMENT_POLICY)."""
    check_registration_status(registration)
    deployment = Deployment.objects.filter(registration=registration, deployment_id=deployment_id).first()
    if deployment is not None:
        check_deployment_status(deployment)
    return deployment


def check_deployment_status(deployment: Deployment) -> None:
    """A deployment waiting for IT (pending) or disabled launches nothing (403 with what to ask IT for)."""
    if deployment.is_active:
        return
    deployment_id = deployment.deployment_id[:100]
    if deployment.pending:
        raise LaunchRefused(
            "deployment_pending",
            "This tool has not been approved yet for this part of your LMS (a new deployment). "
            "Your LMS administrator must ask the tool's IT team to activate it.",
            status=403,
            admin_hint=(
                f"The launch came through deployment ID {deployment_id!r}, which the tool has not seen before "
                f"(registration {deployment.registration}). Ask the tool's IT team to activate this deployment: "
                "it is waiting as pending in the tool's admin (Deployments). In Canvas this happens when the "
                "developer key is installed in another account or sub-account."
            ),
        )
    raise LaunchRefused(
        "deployment_disabled",
        "This deployment of the tool has been disabled.",
        status=403,
        admin_hint=f"Deployment {deployment_id!r} is disabled in the tool's admin.",
    )
