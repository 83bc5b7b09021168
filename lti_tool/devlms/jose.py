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
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import transaction

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
    key = PlatformKey.objects.filter(active=True).order_by("-created_at").first()
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
    return {"keys": [k.public_jwk for k in PlatformKey.objects.filter(active=True).order_by("created_at")]}


def encode_jws(payload: dict[str, Any], header: dict[str, Any], key: Any) -> str:
    """Encode a compact JWS by hand, so tests can also build deliberately wrong tokens.

    `header["alg"]` picks the signature: RS256 (key: PEM text/bytes or an RSA private key object), HS256 (key: bytes
    or text used as the HMAC secret), none (no signature).
    """
    alg = header.get("alg", "RS256")
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(payload, separators=(",", ":")).encode())
    ).encode("ascii")
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        secret = key.encode() if isinstance(key, str) else key
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    elif alg == "RS256":
        if isinstance(key, str | bytes):
            key = serialization.load_pem_private_key(key.encode() if isinstance(key, str) else key, password=None)
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"unsupported alg {alg}")
    return signing_input.decode("ascii") + "." + _b64url(signature)


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
        response = requests.get(url, timeout=JWKS_TIMEOUT_S, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TokenError(f"could not fetch the tool's JWKS from {url}: {exc}") from exc
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
