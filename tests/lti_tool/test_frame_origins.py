"""CSP frame-ancestors learns the LMS origins a registration really uses (issue 19: Canvas schools on their own
domain) from verified launches only, bounded per registration (lti_tool.frames)."""

from __future__ import annotations

import pytest

from lti_tool import frames, services
from lti_tool.devlms import jose
from lti_tool.models import FrameOrigin, Registration

pytestmark = pytest.mark.django_db(transaction=True)

VANITY = "https://canvas.university.test"
PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"


def frame_ancestors(response) -> str:
    csp = response.headers["Content-Security-Policy"]
    return next(part for part in csp.split(";") if part.strip().startswith("frame-ancestors"))


def test_a_school_on_its_own_canvas_domain_may_frame_the_tool_from_its_first_launch(dev_lms):
    dev_lms.register_tool(style="canvas")
    assert VANITY not in frame_ancestors(dev_lms.launch(user="student2").response)

    result = dev_lms.launch(user="student1", domain=VANITY)
    launch = next(r for r in result.response.history if r.url.endswith("/lti/launch/"))
    assert VANITY in frame_ancestors(launch)  # the launch response itself
    assert VANITY in frame_ancestors(result.response)  # the player it leads to
    later = dev_lms.launch(user="student3").session.get(dev_lms.base_url + "/lti/jwks/", timeout=30)
    assert VANITY in frame_ancestors(later)  # and every later page, for everyone
    assert list(FrameOrigin.objects.values_list("origin", flat=True)) == [VANITY]

    # Disabling the registration takes its learned origins out at once (signal, no stale cache).
    services.disable_registration(Registration.objects.get())
    assert VANITY not in frame_ancestors(result.session.get(dev_lms.base_url + "/lti/jwks/", timeout=30))


def test_a_forged_launch_or_an_origin_header_teaches_nothing(dev_lms):
    dev_lms.register_tool(style="canvas")
    evil = "https://evil.example"
    claims = {PRESENTATION: {"document_target": "iframe", "return_url": evil + "/x"}}

    # An id_token signed with another key is refused and changes nothing.
    session, state, nonce = dev_lms.start_login()
    forged = dev_lms.mint_id_token(claims, key=jose.generate_rsa_pem(), nonce=nonce)
    refused = dev_lms.post_launch(session, forged, state)
    assert refused.status_code in (400, 401, 403) and evil not in frame_ancestors(refused)

    # A verified launch sent with a forged Origin header (a student replaying their own id_token by hand).
    result = dev_lms.launch(user="student1")
    session, state, nonce = dev_lms.start_login(session=result.session)
    token = dev_lms.mint_id_token(nonce=nonce)
    data = {"id_token": token, "state": state}
    response = session.post(dev_lms.base_url + "/lti/launch/", data=data, headers={"Origin": evil}, timeout=30)
    assert response.status_code == 200 and evil not in frame_ancestors(response)
    assert not FrameOrigin.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://canvas.university.test/x",  # plain http off loopback
        "https://*.evil.example/x",
        "https://user:pw@canvas.university.test/x",
        "https://canvas.university.test;script-src/x",
        "javascript:alert(1)",
        "https://" + "a" * 300 + ".test/",
        None,
        42,
    ],
)
def test_only_plain_https_origins_are_learned(db, url):
    registration = Registration.objects.create(
        issuer="https://lms.example", client_id="c", auth_login_url="https://lms.example/auth",
        auth_token_url="https://lms.example/token", key_set_url="https://lms.example/jwks",
    )
    assert frames.learn_frame_origins(registration, {PRESENTATION: {"return_url": url}}) == []
    assert not FrameOrigin.objects.exists()


def test_a_registration_keeps_a_bounded_number_of_origins(db):
    registration = Registration.objects.create(
        issuer="https://canvas.instructure.com", client_id="c", auth_login_url="https://sso.canvaslms.com/auth",
        auth_token_url="https://sso.canvaslms.com/token", key_set_url="https://sso.canvaslms.com/jwks",
    )
    # Already allowed for Canvas cloud: nothing to learn.
    assert frames.learn_frame_origins(registration, {PRESENTATION: {"return_url": "https://x.instructure.com/"}}) == []
    for n in range(frames.MAX_LEARNED_ORIGINS + 5):
        learned = frames.learn_frame_origins(registration, {PRESENTATION: {"return_url": f"https://lms{n}.test/r"}})
        assert learned == [f"https://lms{n}.test"]
    kept = set(FrameOrigin.objects.values_list("origin", flat=True))
    assert len(kept) == frames.MAX_LEARNED_ORIGINS and "https://lms0.test" not in kept and "https://lms24.test" in kept
    assert kept <= set(frames.frame_ancestor_sources())
