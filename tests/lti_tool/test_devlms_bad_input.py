"""The development LMS refuses parameters no database can hold (NUL), and odd numbers, with a 4xx, never a 500.

Every request goes over real HTTP to the live server; each refusal must leave the platform's data unchanged.
"""

from __future__ import annotations

import jwt
import pytest
import requests

from lti_tool.devlms import services
from lti_tool.devlms.models import Fault, LineItem, Person, ResourceLink, ScoreEvent, UsedJti

pytestmark = pytest.mark.django_db(transaction=True)
NUL = "\x00"
HUGE = "9" * 40


def _counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (LineItem, Person, ResourceLink, ScoreEvent, UsedJti, Fault))


@pytest.fixture
def platform(dev_lms, tool_peer):
    """A registered, installed tool with an access token holding every service scope."""
    tool, _ = tool_peer.register(dev_lms, "canvas")
    services.install_tool(tool)
    token = tool_peer.access_token(dev_lms, tool.client_id)
    course = services.get_course("course1")
    link = ResourceLink.objects.get(course=course, slug="link1")
    return {
        "lms": dev_lms,
        "tool": tool,
        "headers": {"Authorization": f"Bearer {token}"},
        "lineitems": dev_lms.platform.lineitems_url(course, tool),
        "lineitem": dev_lms.platform.lineitem_url(link.line_item, tool),
        "memberships": f"{dev_lms.base_url}/devlms/services/CourseSection/{course.pk}/bindings/{tool.pk}/memberships",
    }


def _sub_url(lineitem_url: str, tail: str) -> str:
    base, _, query = lineitem_url.partition("?")
    return f"{base}/{tail}" + (f"?{query}" if query else "")


def _form_post(lms, path: str, data: dict[str, str]) -> requests.Response:
    """POST a CSRF-protected development-LMS form as the browser would (cookie, token and Referer)."""
    session = requests.Session()
    session.get(lms.url, timeout=30)
    data = {**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    return session.post(lms.url + path, data=data, headers={"Referer": lms.url}, timeout=30)


def _refused(response: requests.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])


def test_pages_refuse_nul_parameters(platform):
    base = platform["lms"].url
    pages = [
        ("get", "launch/start/", {"course": NUL}),
        ("get", "launch/start/", {"link": NUL}),
        ("get", "launch/start/", {"for_user": NUL}),
        ("get", "launch/start/", {"course" + NUL: "course1"}),
        ("get", "launch/frame/", {"course": NUL}),
        ("get", "launch/frame/", {"link": NUL}),
        ("get", "", {"user": NUL}),
        ("get", "courses/course1/gradebook/", {"user": NUL}),
        ("get", "auth/", {"client_id": NUL, "scope": "openid", "response_type": "id_token"}),
        ("post", "auth/", {"client_id": NUL, "scope": "openid", "response_type": "id_token"}),
        ("form", "register/", {"tool_url": "http://localhost/" + NUL, "style": "canvas"}),
        ("form", "register/", {"tool_url": "http://localhost/", "style": NUL}),
        ("form", "faults/", {"mode": NUL}),
        ("form", f"tools/{platform['tool'].pk}/install/", {"user": NUL}),
    ]
    before = _counts()
    for method, path, params in pages:
        if method == "get":
            response = requests.get(base + path, params=params, timeout=30)
        elif method == "form":
            response = _form_post(platform["lms"], path, params)
        else:
            response = requests.post(base + path, data=params, timeout=30)
        _refused(response)
        assert "NUL" in response.text, path
    assert _counts() == before


def test_protocol_endpoints_refuse_nul_anywhere(platform):
    lms, headers = platform["lms"], platform["headers"]
    assertion = jwt.encode({"iss": "client" + NUL, "jti": NUL}, "not-the-key", algorithm="HS256")
    score = {
        "userId": lms.sub("student1"),
        "scoreGiven": 1,
        "scoreMaximum": 2,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2026-11-26T12:00:00+00:00",
    }
    calls = [
        ("get", platform["lineitems"], {"params": {"resource_link_id": NUL}}),
        ("get", platform["lineitems"], {"params": {"tag": NUL}}),
        ("get", platform["lineitems"], {"params": {"resource_id": NUL}}),
        ("get", platform["lineitems"], {"headers": {"Authorization": "Bearer x" + NUL}}),
        ("post", platform["lineitems"], {"json": {"label": "a" + NUL, "scoreMaximum": 10}}),
        ("post", platform["lineitems"], {"json": {"label": "a", "scoreMaximum": 10, "tag": NUL}}),
        ("post", platform["lineitems"], {"json": {"label": "a", "scoreMaximum": 10, "resourceLinkId": NUL}}),
        ("put", platform["lineitem"], {"json": {"label": "a" + NUL, "scoreMaximum": 10}}),
        ("get", _sub_url(platform["lineitem"], "results"), {"params": {"user_id": NUL}}),
        ("post", _sub_url(platform["lineitem"], "scores"), {"json": {**score, "userId": NUL}}),
        ("post", _sub_url(platform["lineitem"], "scores"), {"json": {**score, "comment": NUL}}),
        ("post", _sub_url(platform["lineitem"], "scores"), {"json": {**score, "timestamp": NUL}}),
        ("post", _sub_url(platform["lineitem"], "scores"), {"files": {"comment": ("c", NUL)}}),
        ("get", platform["memberships"], {"params": {"rlid": NUL}}),
        (
            "post",
            lms.platform.token_url,
            {
                "data": {
                    "grant_type": "client_credentials",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                    "scope": services.SCOPE_SCORE,
                },
                "headers": {},
            },
        ),
        ("post", lms.url + "deep-link-return/", {"data": {"JWT": assertion}, "headers": {}}),
        ("post", lms.url + "registration/", {"json": {"client_name": NUL}, "headers": {"Authorization": "Bearer a"}}),
    ]
    before = _counts()
    for method, url, kwargs in calls:
        kwargs = {"headers": headers, **kwargs}
        response = requests.request(method, url, timeout=30, **kwargs)
        _refused(response)
    assert _counts() == before


def test_numbers_out_of_range_are_refused_or_bounded(platform):
    lms, headers = platform["lms"], platform["headers"]
    before = _counts()
    for params in ({"limit": HUGE}, {"page": HUGE}, {"limit": "x"}, {"limit": "-1"}, {"page": "0"}):
        for url in (platform["lineitems"], _sub_url(platform["lineitem"], "results"), platform["memberships"]):
            response = requests.get(url, params=params, headers=headers, timeout=30)
            assert response.status_code < 500, (url, params, response.text[:300])
    for path in (f"api/{HUGE}/lineitems", f"api/1/lineitems/{HUGE}/lineitem"):
        assert requests.get(lms.url + path, headers=headers, timeout=30).status_code == 404
    for form in (
        {"mode": "slow", "seconds": "1e999"},
        {"mode": "slow", "seconds": "nan"},
        {"mode": "down", "count": HUGE},
    ):
        _refused(_form_post(lms, "faults/", form))
    assert _form_post(lms, f"tools/{HUGE}/install/", {}).status_code == 404
    assert _counts() == before
