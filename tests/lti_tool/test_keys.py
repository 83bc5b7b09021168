"""Tool keys: created on first use, kid = RFC 7638 thumbprint, rotation publishes before it signs."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from lti_tool import keys
from lti_tool.models import Registration, ToolKey

pytestmark = pytest.mark.django_db


def rfc7638_thumbprint(jwk: dict) -> str:
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def kids(jwks: dict) -> set[str]:
    return {k["kid"] for k in jwks["keys"]}


def test_signing_key_is_created_on_first_use():
    assert not ToolKey.objects.exists()
    key = keys.signing_key()
    assert key.state == ToolKey.State.ACTIVE and key.activated_at is not None
    assert keys.signing_key() == key  # not a new one each time
    assert key.kid == rfc7638_thumbprint(key.public_jwk)
    assert key.public_jwk["alg"] == "RS256" and key.public_jwk["use"] == "sig"
    assert int.from_bytes(base64.urlsafe_b64decode(key.public_jwk["n"] + "=="), "big").bit_length() == 2048


def test_signatures_verify_with_the_published_jwks():
    key = keys.signing_key()
    token = jwt.encode({"iss": "tool"}, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})
    public = jwt.PyJWK(keys.public_jwks()["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"iss": "tool"}


def test_jwks_never_leaks_private_parts(client):
    keys.signing_key()
    keys.rotate_key()
    response = client.get("/lti/jwks/")
    assert response.status_code == 200
    for jwk in response.json()["keys"]:
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}


def test_rotation_publishes_before_signing():
    old = keys.signing_key()
    new = keys.rotate_key()
    assert new.state == ToolKey.State.PUBLISHED
    assert kids(keys.public_jwks()) == {old.kid, new.kid}  # platforms can fetch it now
    assert keys.signing_key() == old  # ... but we keep signing with the old key during the grace period
    ToolKey.objects.filter(pk=new.pk).update(created_at=timezone.now() - keys.ROTATION_GRACE - timedelta(minutes=1))
    assert keys.signing_key() == new
    old.refresh_from_db()
    assert old.state == ToolKey.State.RETIRED
    assert kids(keys.public_jwks()) == {old.kid, new.kid}  # the retired key still verifies recent tokens
    ToolKey.objects.filter(pk=old.pk).update(retired_at=timezone.now() - keys.RETIRED_KEY_GRACE - timedelta(minutes=1))
    assert kids(keys.public_jwks()) == {new.kid}


def test_rotation_can_activate_at_once():
    old = keys.signing_key()
    new = keys.rotate_key(activate_now=True)
    assert keys.signing_key() == new
    old.refresh_from_db()
    assert old.state == ToolKey.State.RETIRED


def test_commands():
    out = StringIO()
    call_command("create_tool_key", stdout=out)
    active = keys.signing_key()
    assert active.kid in out.getvalue()
    out = StringIO()
    call_command("rotate_tool_key", stdout=out)
    assert keys.signing_key() == active
    call_command("rotate_tool_key", "--activate-now", stdout=out)
    assert keys.signing_key() != active


def test_register_and_list_platforms_commands():
    out = StringIO()
    call_command(
        "register_platform",
        "--issuer", "https://moodle.example.edu",
        "--client-id", "abc123",
        "--auth-login-url", "https://moodle.example.edu/mod/lti/auth.php",
        "--auth-token-url", "https://moodle.example.edu/mod/lti/token.php",
        "--key-set-url", "https://moodle.example.edu/mod/lti/certs.php",
        "--deployment-id", "3",
        "--deployment-id", "4",
        "--name", "Example Moodle",
        stdout=out,
    )
    registration = Registration.objects.get(issuer="https://moodle.example.edu", client_id="abc123")
    assert registration.status == "active" and registration.registered_by == "manual"
    assert sorted(registration.deployments.values_list("deployment_id", flat=True)) == ["3", "4"]
    out = StringIO()
    call_command("list_platforms", stdout=out)
    assert "https://moodle.example.edu" in out.getvalue() and "abc123" in out.getvalue()


def test_register_platform_refuses_bad_urls():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command(
            "register_platform", "--issuer", "x", "--client-id", "c", "--auth-login-url", "not a url",
            "--auth-token-url", "https://a/t", "--key-set-url", "https://a/k", stdout=StringIO(),
        )
    assert not Registration.objects.exists()
