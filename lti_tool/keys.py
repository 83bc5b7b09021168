"""The tool's signing keys: RSA 2048 in the database, kid = RFC 7638 thumbprint.

Rotation publishes a new key first (state `published`, listed in the JWKS) and signs with it only once platforms that
cache our JWKS have had time to fetch it: `signing_key()` activates the newest published key older than
`ROTATION_GRACE`. The key it replaces is retired but stays in the JWKS for `RETIRED_KEY_GRACE`, so tokens signed just
before the switch still verify.
"""

from __future__ import annotations

import json
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone
from jwcrypto.jwk import JWK

from lti_tool.models import ToolKey

ROTATION_GRACE = timedelta(hours=24)
RETIRED_KEY_GRACE = timedelta(hours=24)


def _new_key(state: str) -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = JWK.from_pem(pem.encode())
    kid = jwk.thumbprint()  # RFC 7638, SHA-256, base64url
    public = json.loads(jwk.export_public())
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    now = timezone.now()
    return ToolKey.objects.create(
        kid=kid,
        private_key_pem=pem,
        public_jwk=public,
        state=state,
        activated_at=now if state == ToolKey.State.ACTIVE else None,
    )


def _activate(key: ToolKey) -> ToolKey:
    now = timezone.now()
    ToolKey.objects.active().exclude(pk=key.pk).update(
        state=ToolKey.State.RETIRED, retired_at=now
    )
    key.state = ToolKey.State.ACTIVE
    key.activated_at = now
    key.save(update_fields=["state", "activated_at"])
    return key


def signing_key() -> ToolKey:
    """The key to sign with now (created on first use; a published key is activated after its grace period)."""
    with transaction.atomic():
        due = (
            ToolKey.objects.filter(state=ToolKey.State.PUBLISHED, created_at__lte=timezone.now() - ROTATION_GRACE)
            .order_by("-created_at", "-pk")
            .first()
        )
        if due is not None:
            return _activate(due)
        active = ToolKey.objects.active().order_by("-activated_at", "-pk").first()
        if active is not None:
            return active
        # Nothing has ever been signed: a published key may start signing at once.
        published = ToolKey.objects.filter(state=ToolKey.State.PUBLISHED).order_by("-created_at", "-pk").first()
        if published is not None:
            return _activate(published)
        return _new_key(ToolKey.State.ACTIVE)


def rotate_key(*, activate_now: bool = False) -> ToolKey:
    """Publish a new key; it signs after ROTATION_GRACE (or at once with activate_now, e.g. after a key leak)."""
    with transaction.atomic():
        key = _new_key(ToolKey.State.PUBLISHED)
        if activate_now:
            _activate(key)
        return key


def public_jwks() -> dict:
    """The JWKS we publish: active and published keys, plus keys retired less than RETIRED_KEY_GRACE ago."""
    signing_key()  # a fresh install publishes a key before anyone asks for a signature
    cutoff = timezone.now() - RETIRED_KEY_GRACE
    keys = ToolKey.objects.filter(state__in=[ToolKey.State.ACTIVE, ToolKey.State.PUBLISHED]) | ToolKey.objects.filter(
        state=ToolKey.State.RETIRED, retired_at__gt=cutoff
    )
    return {"keys": [k.public_jwk for k in keys.order_by("created_at", "pk")]}
