"""Forged and malformed launches: each is refused with a 4xx page that names the failed check, never a 500 or a
success, and nothing is created. These close the gaps measured in pylti1p3 2.0.0 (see docs and lti.md section 7)."""

from __future__ import annotations

import time

import pytest

from lti_tool import launches
from lti_tool.claims import (
    C_CONTEXT,
    C_CUSTOM,
    C_DEPLOYMENT_ID,
    C_DL_SETTINGS,
    C_MESSAGE_TYPE,
    C_RESOURCE_LINK,
    C_ROLES,
    C_TARGET_LINK_URI,
    C_VERSION,
    DEEP_LINKING_REQUEST,
    SUBMISSION_REVIEW_REQUEST,
)
from lti_tool.models import Context, LtiUser, Registration, ResourceLink, UsedNonce
from tests.lti_tool.conftest import LAUNCH_URL, REMOVE, make_key, refused_count

NOW = int(time.time())


def assert_refused(response, reason: str, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status
    assert "lti_tool/launch_error.html" in [t.name for t in response.templates]
    body = response.content.decode()
    assert reason in body
    assert "For your LMS administrator" in body
    assert not ResourceLink.objects.exists()
    assert not LtiUser.objects.exists()


def claim_mutations():
    """(id, claim overrides, expected reason, expected status)."""
    return [
        ("wrong iss", {"iss": "https://evil.example"}, "issuer_unknown", 401),
        ("wrong aud", {"aud": "someone-else"}, "client_id_unknown", 401),
        ("extra untrusted aud", {"aud": ["tool-client-1", "evil"], "azp": "tool-client-1"}, "aud_untrusted", 401),
        ("wrong azp", {"azp": "evil"}, "azp_mismatch", 401),
        ("azp not an audience", {"aud": ["tool-client-1", "x"], "azp": "y"}, "azp_mismatch", 401),
        ("missing azp with several aud", {"aud": ["tool-client-1", "evil"]}, "azp_missing", 401),
        ("expired", {"iat": NOW - 7200, "exp": NOW - 3600}, "token_expired", 401),
        ("missing exp", {"exp": REMOVE}, "exp_missing", 401),
        ("missing iat", {"iat": REMOVE}, "iat_missing", 401),
        ("iat in the future beyond leeway", {"iat": NOW + 600, "exp": NOW + 900}, "token_not_yet_valid", 401),
        ("nbf in the future", {"nbf": NOW + 600}, "token_not_yet_valid", 401),
        ("wrong message type", {C_MESSAGE_TYPE: "LtiStartProctoring"}, "message_type_unsupported", 400),
        ("missing message type", {C_MESSAGE_TYPE: REMOVE}, "message_type_unsupported", 400),
        ("wrong version", {C_VERSION: "1.1"}, "version_unsupported", 400),
        ("missing roles", {C_ROLES: REMOVE}, "roles_missing", 400),
        ("roles not a list", {C_ROLES: "Learner"}, "roles_missing", 400),
        ("missing resource_link", {C_RESOURCE_LINK: REMOVE}, "resource_link_missing", 400),
        ("resource_link without id", {C_RESOURCE_LINK: {"title": "x"}}, "resource_link_missing", 400),
        ("missing sub", {"sub": REMOVE}, "sub_missing", 400),
        ("empty sub", {"sub": ""}, "sub_missing", 400),
        ("missing deployment_id", {C_DEPLOYMENT_ID: REMOVE}, "deployment_id_missing", 400),
        ("missing target_link_uri", {C_TARGET_LINK_URI: REMOVE}, "target_link_uri_missing", 400),
        ("target_link_uri of another tool", {C_TARGET_LINK_URI: "https://other.example/launch"},
         "target_link_uri_invalid", 400),
        ("missing nonce", {"nonce": REMOVE}, "nonce_missing", 401),
        ("nonce of another login", {"nonce": "not-the-nonce-we-issued"}, "nonce_mismatch", 401),
        ("context without id", {C_CONTEXT: {"title": "x"}}, "context_invalid", 400),
        # No database text can hold a NUL: refused as malformed rather than failing half-way through storing it.
        ("NUL in the user's name", {"name": "Ada\u0000Lovelace"}, "token_malformed", 400),
        ("NUL in a custom parameter's name", {C_CUSTOM: {"place\u0000ment": "x"}}, "token_malformed", 400),
    ]


@pytest.mark.parametrize(
    ("overrides", "reason", "status"),
    [pytest.param(o, r, s, id=i) for i, o, r, s in claim_mutations()],
)
def test_forged_claims_are_refused(client, platform, overrides, reason, status):
    state, nonce = platform.login(client)
    before = refused_count(reason)
    overrides = dict(overrides)
    token = platform.id_token(overrides.pop("nonce", nonce), **overrides)
    response = platform.launch(client, token, state)
    assert_refused(response, reason, status)
    assert refused_count(reason) == before + 1


def test_deep_linking_launch_without_settings_is_refused(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce, message_type=DEEP_LINKING_REQUEST, **{C_DL_SETTINGS: REMOVE})
    assert_refused(platform.launch(client, token, state), "deep_linking_settings_missing", 400)


def test_submission_review_without_for_user_is_refused(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce, message_type=SUBMISSION_REVIEW_REQUEST)
    assert_refused(platform.launch(client, token, state), "for_user_missing", 400)


def test_iat_a_few_seconds_ahead_is_accepted(client, platform):
    """Platform clocks run a little fast; pylti1p3 refused this with zero leeway."""
    state, nonce = platform.login(client)
    now = int(time.time())
    response = platform.launch(client, platform.id_token(nonce, iat=now + 5, exp=now + 305), state)
    assert response.status_code == 303


def test_bad_signature(client, platform, platform_keys):
    state, nonce = platform.login(client)
    impostor = platform_keys[1]
    # Signed by another key but claiming the platform's kid.
    token = platform.sign(platform.claims(nonce), key=impostor, headers={"kid": platform.key.kid})
    assert_refused(platform.launch(client, token, state), "signature_invalid", 401)


def test_tampered_payload(client, platform):
    state, nonce = platform.login(client)
    header, payload, signature = platform.id_token(nonce).split(".")
    forged = platform.sign(platform.claims(nonce, sub="admin")).split(".")[1]
    assert forged != payload
    assert_refused(platform.launch(client, f"{header}.{forged}.{signature}", state), "signature_invalid", 401)


def test_unknown_kid_is_refused_after_one_refetch(client, platform, stub, platform_keys):
    state, nonce = platform.login(client)
    stranger = platform_keys[2]
    token = platform.sign(platform.claims(nonce), key=stranger)
    assert_refused(platform.launch(client, token, state), "kid_unknown", 401)
    assert stub.state.jwks_fetches == 2  # cached fetch, then exactly one refetch


def test_missing_kid(client, platform):
    state, nonce = platform.login(client)
    import jwt

    token = jwt.encode(platform.claims(nonce), platform.key.private_pem, algorithm="RS256")
    assert_refused(platform.launch(client, token, state), "kid_missing", 401)


def test_alg_none(client, platform):
    state, nonce = platform.login(client)
    token = platform.unsigned(platform.claims(nonce), {"alg": "none", "kid": platform.key.kid})
    assert_refused(platform.launch(client, token, state), "alg_not_allowed", 401)


def test_hs256_signed_with_the_public_key(client, platform):
    state, nonce = platform.login(client)
    token = platform.hs256_with_public_key(platform.claims(nonce))
    assert_refused(platform.launch(client, token, state), "alg_not_allowed", 401)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.not-base64!.sig", "....", "\u00e9\u00e9.\u00e9.\u00e9"],
)
def test_garbage_tokens(client, platform, token):
    state, _ = platform.login(client)
    assert_refused(platform.launch(client, token, state), "token_malformed", 400)


def test_oversized_token(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce, padding="x" * 70_000)
    assert_refused(platform.launch(client, token, state), "token_too_large", 400)


def test_oversized_body(client, platform):
    state, _ = platform.login(client)
    response = client.post("/lti/launch/", {"id_token": "x" * 1_200_000, "state": state})
    assert_refused(response, "request_too_large", 400)


def test_empty_post(client, platform):
    assert_refused(client.post("/lti/launch/", {}), "id_token_missing", 400)


def test_get_is_not_a_launch(client, platform):
    assert client.get("/lti/launch/").status_code == 405


def test_platform_error_is_shown(client, platform):
    state, _ = platform.login(client)
    response = client.post(
        "/lti/launch/", {"error": "login_required", "error_description": "no session", "state": state}
    )
    assert_refused(response, "platform_error", 400)
    assert "login_required" in response.content.decode()


# --- State ------------------------------------------------------------------------------------------------------------
def test_missing_state(client, platform):
    _, nonce = platform.login(client)
    response = client.post("/lti/launch/", {"id_token": platform.id_token(nonce)})
    assert_refused(response, "state_missing", 400)


def test_state_we_never_issued(client, platform):
    _, nonce = platform.login(client)
    assert_refused(platform.launch(client, platform.id_token(nonce), "state-forged"), "state_unknown", 400)


def test_missing_state_cookie(client, platform):
    state, nonce = platform.login(client)
    del client.cookies[launches.STATE_COOKIE_PREFIX + state]
    assert_refused(platform.launch(client, platform.id_token(nonce), state), "state_cookie_missing", 400)


def test_state_cookie_from_another_browser(client, platform, django_user_model):
    """Login CSRF: the attacker's state posted into a victim's browser, which has no cookie for it."""
    from django.test import Client

    state, nonce = platform.login(client)
    victim = Client()
    assert_refused(platform.launch(victim, platform.id_token(nonce), state), "state_cookie_missing", 400)


def test_state_mismatch(client, platform):
    state, nonce = platform.login(client)
    client.cookies[launches.STATE_COOKIE_PREFIX + state] = "state-something-else"
    assert_refused(platform.launch(client, platform.id_token(nonce), state), "state_mismatch", 400)


def test_token_of_another_registration_with_this_state(client, platform, stub, platform_keys):
    """A valid token from a second registration cannot complete a login started for the first."""
    from tests.lti_tool.conftest import TestPlatform

    other = TestPlatform(stub, platform.key, issuer=stub.url, client_id="tool-client-2", deployment_id="dep-2")
    state, nonce = platform.login(client)
    response = platform.launch(client, other.id_token(nonce), state)
    assert_refused(response, "state_mismatch", 400)


# --- Replay -----------------------------------------------------------------------------------------------------------
def test_replayed_token_is_refused(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce)
    assert platform.launch(client, token, state).status_code == 303
    again = platform.launch(client, token, state)
    assert 400 <= again.status_code < 500
    assert "state_unknown" in again.content.decode()


def test_replayed_token_with_a_fresh_state_is_refused(client, platform):
    state, nonce = platform.login(client)
    token = platform.id_token(nonce)
    assert platform.launch(client, token, state).status_code == 303
    new_state, _ = platform.login(client)
    again = platform.launch(client, token, new_state)
    assert again.status_code == 401
    assert "nonce_mismatch" in again.content.decode()


def test_used_nonce_is_refused_even_if_a_state_expects_it(client, platform):
    """The one-time nonce table is the last line: a state that (somehow) carries a used nonce still fails."""
    from django.core.cache import cache

    state, nonce = platform.login(client)
    token = platform.id_token(nonce)
    assert platform.launch(client, token, state).status_code == 303
    assert UsedNonce.objects.filter(nonce=nonce, issuer=platform.issuer).count() == 1
    new_state, _ = platform.login(client)
    record = cache.get(launches.STATE_CACHE_PREFIX + new_state)
    cache.set(launches.STATE_CACHE_PREFIX + new_state, {**record, "nonce": nonce}, 60)
    again = platform.launch(client, token, new_state)
    assert again.status_code == 401
    assert "nonce_replayed" in again.content.decode()


# --- Registrations and deployments ------------------------------------------------------------------------------------
def test_unknown_registration_and_deployment(client, platform, stub, platform_keys):
    """iss/client_id/deployment the tool never saw: a clean 401 (pylti1p3 answered 500)."""
    state, nonce = platform.login(client)
    token = platform.id_token(nonce, iss="https://unknown-lms.example", aud="nobody", **{C_DEPLOYMENT_ID: "zz"})
    assert_refused(platform.launch(client, token, state), "issuer_unknown", 401)


def test_pending_registration_waits_for_it_approval(client, platform):
    state, nonce = platform.login(client)
    Registration.objects.filter(pk=platform.registration.pk).update(status=Registration.Status.PENDING)
    response = platform.launch(client, platform.id_token(nonce), state)
    assert_refused(response, "registration_pending", 403)
    assert "waiting for IT approval" in response.content.decode()
    # The launch itself was sound: no checklist of keys, ids and clocks to send the LMS admin the wrong way.
    assert "server clocks" not in response.content.decode()


def test_disabled_registration(client, platform):
    state, nonce = platform.login(client)
    Registration.objects.filter(pk=platform.registration.pk).update(status=Registration.Status.DISABLED)
    response = platform.launch(client, platform.id_token(nonce), state)
    assert_refused(response, "registration_disabled", 403)
    assert "server clocks" not in response.content.decode()


def test_a_forged_launch_gets_the_admin_checklist(client, platform):
    state, nonce = platform.login(client)
    response = platform.launch(client, platform.id_token(nonce, iss="https://evil.example"), state)
    assert_refused(response, "issuer_unknown", 401)
    assert "server clocks are correct" in response.content.decode()


def test_disabled_deployment(client, platform):
    state, nonce = platform.login(client)
    platform.deployment.is_active = False
    platform.deployment.save()
    assert_refused(platform.launch(client, platform.id_token(nonce), state), "deployment_disabled", 403)


def test_platform_jwks_unreachable_is_a_4xx(client, platform, stub):
    state, nonce = platform.login(client)
    stub.state.jwks_status = 503
    assert_refused(platform.launch(client, platform.id_token(nonce), state), "jwks_unavailable", 401)


def test_platform_jwks_hanging_times_out(client, platform, stub, settings):
    settings.LTI_HTTP_TIMEOUT_S = 0.3
    stub.state.jwks_delay_s = 2
    state, nonce = platform.login(client)
    assert_refused(platform.launch(client, platform.id_token(nonce), state), "jwks_unavailable", 401)


def test_jwks_with_an_unsuitable_key(client, platform, stub):
    key = make_key(kid=platform.key.kid)
    stub.state.keys = [type(key)(key.kid, key.private_pem, {**key.public_jwk, "alg": "RS512"})]
    state, nonce = platform.login(client)
    assert_refused(platform.launch(client, platform.sign(platform.claims(nonce), key=key), state), "key_unsuitable")


# --- Login ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "reason", "status"),
    [
        ({"iss": ""}, "login_iss_missing", 400),
        ({"login_hint": ""}, "login_hint_missing", 400),
        ({"target_link_uri": ""}, "login_target_missing", 400),
        ({"target_link_uri": "https://evil.example/lti/launch/"}, "login_target_invalid", 400),
        ({"iss": "https://unknown.example"}, "issuer_unknown", 401),
        ({"client_id": "unknown-client"}, "client_id_unknown", 401),
    ],
)
def test_bad_logins_are_refused(client, platform, params, reason, status):
    query = {
        "iss": platform.issuer,
        "login_hint": "hint",
        "target_link_uri": LAUNCH_URL,
        "client_id": platform.client_id,
        **params,
    }
    response = client.get("/lti/login/", query)
    assert response.status_code == status
    assert reason in response.content.decode()
    assert not Context.objects.exists()


def test_login_for_a_pending_registration_explains(client, platform):
    Registration.objects.filter(pk=platform.registration.pk).update(status=Registration.Status.PENDING)
    response = client.get(
        "/lti/login/",
        {"iss": platform.issuer, "login_hint": "h", "target_link_uri": LAUNCH_URL, "client_id": platform.client_id},
    )
    assert response.status_code == 403
    assert "waiting for IT approval" in response.content.decode()


def test_login_without_client_id_is_ambiguous_when_an_issuer_has_several(client, platform, stub):
    from tests.lti_tool.conftest import TestPlatform

    TestPlatform(stub, platform.key, issuer=stub.url, client_id="tool-client-2", deployment_id="dep-2")
    response = client.get("/lti/login/", {"iss": platform.issuer, "login_hint": "h", "target_link_uri": LAUNCH_URL})
    assert response.status_code == 401
