"""Cookies and framing for a tool that lives inside LMS iframes.

- On secure requests every cookie becomes `SameSite=None; Secure; Partitioned` (CHIPS): browsers send it inside
  the LMS iframe, and Chrome's third-party-cookie phase-out keeps partitioned cookies. Python 3.11's http.cookies
  cannot write `Partitioned`, so the Morsel attribute table is extended here (as pylti1p3 does for SameSite).
  Over plain http (localhost development and tests) cookies are left alone: same-site there, launches work.
- Tool pages get `Content-Security-Policy` with `frame-ancestors 'self' <the LMS origins of lti_tool.frames>`
  instead of X-Frame-Options (which cannot list several origins), and a script policy of 'self' only (no inline
  scripts: page scripts are static files). The development LMS (/devlms/) and the Django admin keep their own rules.
"""

from __future__ import annotations

import http.cookies
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from lti_tool.frames import frame_ancestor_sources

# Teach http.cookies the Partitioned flag (Python 3.14 knows it natively).
http.cookies.Morsel._reserved.setdefault("partitioned", "Partitioned")  # type: ignore[attr-defined]
http.cookies.Morsel._flags.add("partitioned")  # type: ignore[attr-defined]

# Paths any site may frame: Dynamic Registration runs inside a platform that is not registered yet. Refusal pages
# (response.lti_frame_anywhere) too: an unregistered platform's admin must be able to read why.
OPEN_FRAME_PREFIXES = ("/lti/register/",)
EXEMPT_PREFIXES = ("/devlms/",)
ADMIN_PREFIX = "/admin/"

TOOL_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'"
)


def make_cookies_cross_site(response: HttpResponse) -> None:
    """SameSite=None; Secure; Partitioned on every cookie of a secure response."""
    for morsel in response.cookies.values():
        morsel["samesite"] = "None"
        morsel["secure"] = True
        morsel["partitioned"] = True


class LtiFrameMiddleware:
    """Cross-site cookies over HTTPS and CSP frame-ancestors for the LMS iframes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            make_cookies_cross_site(response)
        path = request.path
        if path.startswith(EXEMPT_PREFIXES) or "Content-Security-Policy" in response:
            return response
        if path.startswith(ADMIN_PREFIX):
            response["Content-Security-Policy"] = "frame-ancestors 'self'"
            return response
        if path.startswith(OPEN_FRAME_PREFIXES) or getattr(response, "lti_frame_anywhere", False):
            ancestors = "*"
        else:
            ancestors = " ".join(["'self'", *frame_ancestor_sources()])
        response["Content-Security-Policy"] = f"{TOOL_POLICY}; frame-ancestors {ancestors}"
        # frame-ancestors governs framing; an X-Frame-Options set elsewhere would block the LMS.
        if "X-Frame-Options" in response:
            del response["X-Frame-Options"]
        return response
