"""Keys and JWTs of the development LMS: its own RSA keys, and the tool's public keys fetched over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction

from lti_tool import outbound
from lti_tool.devlms.models import PlatformKey

JWKS_TIMEOUT_S = 5.0
# Refetch a tool's JWKS at most this often, except on an unknown kid (key rotation).
JWKS_CACHE_S = 300.0


class TokenError(Exception):
    """A JWT from the tool failed verification; the message says why."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_rsa_pem() -> str:
    """A fresh 2048-bit RSA private key in PEM (PKCS#8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_jwk_from_pem(private_key_pem: str, kid: str) -> dict[str, Any]:
    """The public half of an RSA private key as a JWK with `kid`, `alg` RS256, `use` sig."""
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


def public_pem(key: PlatformKey) -> str:
    """The public key of a platform key in PEM (SubjectPublicKeyInfo)."""
    private = serialization.load_pem_private_key(key.private_key_pem.encode("ascii"), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def platform_key() -> PlatformKey:
    """The active platform signing key, created on first use."""
    key = PlatformKey.objects.active().order_by("-created_at").first()
    if key is not None:
        return key
    with transaction.atomic():
        pem = generate_rsa_pem()
        kid = secrets.token_hex(8)
        return PlatformKey.objects.create(kid=kid, private_key_pem=pem, public_jwk=public_jwk_from_pem(pem, kid))


def rotate_platform_key(retire_old: bool = False) -> PlatformKey:
    """Publish and start signing with a new key (keep the old one in the JWKS unless `retire_old`)."""
    if retire_old:
        PlatformKey.objects.update(active=False)
    pem = generate_rsa_pem()
    kid = secrets.token_hex(8)
    key = PlatformKey.objects.create(kid=kid, private_key_pem=pem, public_jwk=public_jwk_from_pem(pem, kid))
    return key


def platform_jwks() -> dict[str, Any]:
    """The JWKS the platform publishes (every active key)."""
    platform_key()
    return {"keys": [k.public_jwk for k in PlatformKey.objects.active().order_by("created_at")]}


def encode_jws(payload: dict[str, Any], header: dict[str, Any], key: Any) -> str:
    """Encode a compact JWS with exactly `header` (no `typ` unless given), so tests can also build wrong tokens.

    `header["alg"]` picks the signature: RS256 (key: PEM text/bytes or an RSA private key object), none (no
    signature), HS256 (key: bytes or text used as the HMAC secret).
    """
    alg = header.get("alg", "RS256")
    if alg == "HS256":
        return _hs256_by_hand(payload, header, key)
    body = json.dumps(payload, separators=(",", ":")).encode()
    # PyJWT adds typ "JWT" unless told None; sort_headers=False keeps the header as the caller wrote it.
    return jwt.api_jws.encode(
        body, None if alg == "none" else key, algorithm=alg, headers={"typ": None, **header}, sort_headers=False
    )


def _hs256_by_hand(payload: dict[str, Any], header: dict[str, Any], key: str | bytes) -> str:
    # The key-confusion forgery (HMAC keyed with the platform's public key PEM): PyJWT refuses an asymmetric key as
    # an HMAC secret, so this one deliberately broken token is signed by hand.
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(payload, separators=(",", ":")).encode())
    )
    secret = key.encode() if isinstance(key, str) else key
    return signing_input + "." + _b64url(hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest())


def sign_platform_jwt(payload: dict[str, Any], header_overrides: dict[str, Any] | None = None) -> str:
    """Sign `payload` with the platform's active key (RS256, kid in the header)."""
    key = platform_key()
    header = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
    header.update(header_overrides or {})
    return encode_jws(payload, header, key.private_key_pem)


_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_lock = threading.Lock()


def _fetch_jwks(url: str) -> dict[str, Any]:
    try:
        # The tool's JWKS is usually on localhost in development: no public-address guard for the development LMS.
        data = outbound.fetch_json("GET", url, timeout=JWKS_TIMEOUT_S, public_only=False)
    except outbound.FetchError as exc:
        raise TokenError(f"could not fetch the tool's JWKS: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise TokenError(f"the tool's JWKS at {url} has no 'keys' list")
    with _jwks_lock:
        _jwks_cache[url] = (time.monotonic(), data)
    return data


def _tool_key(jwks_uri: str, kid: str | None) -> Any:
    cached = _jwks_cache.get(jwks_uri)
    fresh = False
    if cached is None or time.monotonic() - cached[0] > JWKS_CACHE_S:
        data, fresh = _fetch_jwks(jwks_uri), True
    else:
        data = cached[1]
    for attempt in range(2):
        keys = [k for k in data["keys"] if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
        if keys:
            try:
                return jwt.PyJWK(keys[0], algorithm="RS256").key
            except jwt.PyJWTError as exc:
                raise TokenError(f"unusable key {kid} in the tool's JWKS: {exc}") from exc
        if attempt == 0 and not fresh:
            data = _fetch_jwks(jwks_uri)  # unknown kid: the tool may have rotated its key
    raise TokenError(f"kid {kid!r} is not in the tool's JWKS at {jwks_uri}")


def verify_tool_jwt(
    token: str, *, jwks_uri: str, audience: str | list[str], issuer: str, verify_iat: bool = True
) -> dict[str, Any]:
    """Verify a JWT the tool signed (RS256, key from its JWKS over HTTP); exp, iat and aud required. With
    verify_iat=False the caller judges `iat` itself (the Canvas token endpoint has its own rule and message)."""
    if not isinstance(token, str) or len(token) > 20_000 or token.count(".") != 2:
        raise TokenError("not a compact JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"unreadable JWT header: {exc}") from exc
    if header.get("alg") != "RS256":
        raise TokenError(f"alg must be RS256, not {header.get('alg')!r}")
    key = _tool_key(jwks_uri, header.get("kid"))
    try:
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            leeway=30,
            options={"require": ["exp", "iat", "iss", "aud"], "verify_iat": verify_iat},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
