"""The AGS client: service URLs, Link paging, the client-credentials assertion, the shared token cache."""

from __future__ import annotations

import time

import jwt
import pytest
from django.core.cache import cache
from django.test import override_settings

from lti_tool import keys
from lti_tool.gradebook import ags
from tests.lti_tool import gradebook_support
from tests.lti_tool.gradebook_support import make_placement

stub_lms = gradebook_support.stub_lms


@pytest.mark.parametrize(
    ("lineitem", "scores"),
    [
        # Moodle keeps the tool type in the query string: /scores goes before it.
        (
            "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3",
            "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=3",
        ),
        (
            "https://canvas.example.edu/api/lti/courses/1/line_items/42",
            "https://canvas.example.edu/api/lti/courses/1/line_items/42/scores",
        ),
        ("https://lms.example.edu/lineitems/9/", "https://lms.example.edu/lineitems/9/scores"),
        ("https://lms.example.edu/li?a=1&b=2", "https://lms.example.edu/li/scores?a=1&b=2"),
    ],
)
def test_scores_url_goes_before_the_query_string(lineitem, scores):
    assert ags.scores_url(lineitem) == scores


def test_query_parameters_are_added_to_existing_ones():
    assert (
        ags.with_query("https://m.example.edu/lineitems?type_id=3", {"resource_link_id": "a b"})
        == "https://m.example.edu/lineitems?type_id=3&resource_link_id=a+b"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://m.example.edu/mod/lti/services.php/CourseSection/2/bindings/3/memberships?page=2>; rel="next"',
            "https://m.example.edu/mod/lti/services.php/CourseSection/2/bindings/3/memberships?page=2",
        ),
        (
            '<https://c.example.edu/x?page=1>; rel="first", <https://c.example.edu/Next?page=2&a=1,2>; rel="next"',
            "https://c.example.edu/Next?page=2&a=1,2",
        ),
        ('<https://c.example.edu/p3>; rel="prev next"', "https://c.example.edu/p3"),
        ("<https://c.example.edu/p3>; REL=next", "https://c.example.edu/p3"),
        ('<https://c.example.edu/p1>; rel="first"', None),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_next_link_keeps_the_url_exactly(header, expected):
    assert ags.next_link(header) == expected


def test_retry_after_as_seconds_or_http_date():
    assert ags.parse_retry_after("120") == 120.0
    assert ags.parse_retry_after(None) is None
    assert ags.parse_retry_after("soon") is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 300))
    assert 290 <= ags.parse_retry_after(later) <= 301


@pytest.mark.django_db
def test_client_assertion_is_signed_with_the_tool_key_for_the_token_endpoint(stub_lms):
    link = make_placement(stub_lms)
    registration = link.context.deployment.registration
    assertion = ags.client_assertion(registration)
    key = keys.signing_key()
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256" and header["kid"] == key.kid
    claims = jwt.decode(assertion, jwt.PyJWK(key.public_jwk).key, algorithms=["RS256"], audience=stub_lms.url("/token"))
    assert claims["iss"] == claims["sub"] == registration.client_id
    assert claims["exp"] > claims["iat"] and claims["jti"]
    assert ags.client_assertion(registration) != assertion  # a fresh jti every time
    registration.auth_audience = "https://lms.example.edu/oauth2/token"
    other = jwt.decode(ags.client_assertion(registration), options={"verify_signature": False})
    assert other["aud"] == "https://lms.example.edu/oauth2/token"


@pytest.mark.django_db
def test_tokens_are_cached_per_scope_set_and_shared(stub_lms):
    link = make_placement(stub_lms)
    registration = link.context.deployment.registration
    first = ags.access_token(registration, (ags.SCOPE_SCORE,))
    assert ags.access_token(registration, (ags.SCOPE_SCORE,)) == first
    form = stub_lms.token_requests[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"] == ags.SCOPE_SCORE
    # The cache is the shared one (Redis in production), so another worker process finds the same token there.
    assert first in [cache.get(ags._token_cache_key(registration, (ags.SCOPE_SCORE,)))]
    other = ags.access_token(registration, (ags.SCOPE_LINEITEM, ags.SCOPE_SCORE))
    assert other != first
    assert ags.access_token(registration, (ags.SCOPE_SCORE, ags.SCOPE_LINEITEM)) == other  # order does not matter
    assert len(stub_lms.token_requests) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("expires_in", "cached_for"), [(3600, 3540), (90, 45)])
def test_token_lifetime_in_the_cache_ends_before_the_platforms(stub_lms, monkeypatch, expires_in, cached_for):
    link = make_placement(stub_lms)
    registration = link.context.deployment.registration
    stub_lms.queue("POST", "/token", 200, {"access_token": "short", "expires_in": expires_in})
    stored = []
    real_set = cache.set
    monkeypatch.setattr(
        ags.cache, "set", lambda key, value, timeout: stored.append(timeout) or real_set(key, value, timeout)
    )
    assert ags.access_token(registration, (ags.SCOPE_SCORE,)) == "short"
    assert stored == [cached_for]


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "body"), [(400, {"error": "invalid_client"}), (503, "down"), (200, "not json")])
def test_token_failures_are_retryable_errors(stub_lms, status, body):
    link = make_placement(stub_lms)
    stub_lms.queue("POST", "/token", status, body)
    with pytest.raises(ags.ServiceError) as failure:
        ags.access_token(link.context.deployment.registration, (ags.SCOPE_SCORE,))
    assert failure.value.retryable


@pytest.mark.django_db
def test_a_401_refreshes_the_token_once_and_no_more(stub_lms):
    link = make_placement(stub_lms)
    registration = link.context.deployment.registration
    path = "/lineitems/7/lineitem/scores"
    stub_lms.queue("POST", path, 401, {"error": "expired"})
    stub_lms.queue("POST", path, 401, {"error": "expired"})
    response = ags.post_score(registration, link.lineitem_url, {"userId": "u"}, (ags.SCOPE_SCORE,))
    assert response.status_code == 401
    assert len(stub_lms.requests_to("POST", path)) == 2
    assert len(stub_lms.token_requests) == 2


@pytest.mark.django_db
@override_settings(LTI_HTTP_TIMEOUT_S=0.2)
def test_every_call_has_a_timeout(stub_lms):
    link = make_placement(stub_lms)
    stub_lms.queue("POST", "/token", 200, {"access_token": "x", "expires_in": 3600}, delay_s=1.0)
    with pytest.raises(ags.ServiceError, match="did not answer within 0.2 s") as failure:
        ags.access_token(link.context.deployment.registration, (ags.SCOPE_SCORE,))
    assert failure.value.retryable


def test_score_payload_final_and_pending():
    final = ags.score_payload(
        user_id="u1",
        score_given=3.5,
        score_maximum=5,
        activity_progress="Completed",
        grading_progress="FullyGraded",
        timestamp="2026-11-26T17:00:00.123Z",
        comment="3.5 of 5",
        new_submission=False,
    )
    assert final == {
        "userId": "u1",
        "scoreGiven": 3.5,
        "scoreMaximum": 5,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2026-11-26T17:00:00.123Z",
        "comment": "3.5 of 5",
        ags.CANVAS_SUBMISSION_EXTENSION: {"new_submission": False},
    }
    pending = ags.score_payload(
        user_id="u1",
        score_given=3.5,
        score_maximum=5,
        activity_progress="Submitted",
        grading_progress="Pending",
        timestamp="2026-11-26T17:00:01.123Z",
        comment="",
        new_submission=True,
    )
    assert "scoreGiven" not in pending and "comment" not in pending
    assert pending[ags.CANVAS_SUBMISSION_EXTENSION] == {"new_submission": True, "preserve_score": True}
