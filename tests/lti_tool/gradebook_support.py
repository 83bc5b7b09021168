"""A scriptable AGS/NRPS platform over real HTTP on 127.0.0.1, for the gradebook's unit-level tests.

The development LMS (lti_tool/devlms) is the platform of the end-to-end tests; this stub exists to make one answer
at a time happen on demand (a 409 on exactly the second attempt, a token that expires, a page with a Link header)
and to see exactly what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.core.cache import cache
from django.db import transaction

from lti_tool import keys
from lti_tool.gradebook import ags, services
from lti_tool.models import LtiUser, ResourceLink
from tests.factories import (
    ContextFactory,
    DeploymentFactory,
    LtiUserFactory,
    RegistrationFactory,
    ResourceLinkFactory,
)
from tests.lti_support import serve_on_loopback, stop_serving


@dataclass
class Seen:
    method: str
    path: str  # with the query string, exactly as requested
    headers: dict[str, str]
    body: Any


@dataclass
class Canned:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    reason: str | None = None  # the status line's reason phrase (Moodle 4.5 puts its message there)


class StubPlatform:
    """Answers token, line item, score and membership requests; canned answers take precedence, in order."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.canned: dict[tuple[str, str], deque[Canned]] = defaultdict(deque)
        self.issued: set[str] = set()
        self.token_requests: list[dict[str, Any]] = []
        self.lineitems: list[dict[str, Any]] = []
        self.pages: dict[str, Canned] = {}
        self.expected_audience: str | None = None
        # The tool's public keys, read in the test's thread: this server's threads never touch the database.
        self.jwks: dict[str, Any] = {"keys": []}
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

        self.server, self.base = serve_on_loopback(Handler)

    def stop(self) -> None:
        stop_serving(self.server)

    def url(self, path: str) -> str:
        return self.base + path

    def queue(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        headers=None,
        delay_s: float = 0,
        reason: str | None = None,
    ) -> None:
        """The next `method` request to `path` (without query) gets this answer."""
        self.canned[(method, path)].append(Canned(status, body, dict(headers or {}), delay_s, reason))

    def requests_to(self, method: str, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]

    def revoke_tokens(self) -> None:
        self.issued.clear()

    # --- request handling -------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        ctype = handler.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in ctype:
            body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        with self._lock:
            self.seen.append(Seen(method, handler.path, dict(handler.headers.items()), body))
        path = urlsplit(handler.path).path
        canned = None
        with self._lock:
            if self.canned[(method, path)]:
                canned = self.canned[(method, path)].popleft()
        if canned is None:
            canned = self._default(method, handler.path, path, handler.headers, body)
        if canned.delay_s:
            time.sleep(canned.delay_s)
        payload = (
            b""
            if canned.body is None
            else (canned.body.encode() if isinstance(canned.body, str) else json.dumps(canned.body).encode())
        )
        try:
            handler.send_response(canned.status, canned.reason)
            for name, value in canned.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def _authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.issued

    def _default(self, method: str, full_path: str, path: str, headers: Any, body: Any) -> Canned:
        if method == "POST" and path == "/token":
            return self._token(body)
        if not self._authorised(headers):
            return Canned(401, {"error": "invalid token"})
        if full_path in self.pages:
            return self.pages[full_path]
        if path.endswith("/scores") and method == "POST":
            return Canned(200, {})
        if path == "/lineitems" and method == "GET":
            return Canned(200, self.lineitems)
        if path == "/lineitems" and method == "POST":
            item = {**body, "id": self.url(f"/lineitems/{len(self.lineitems) + 1}/lineitem?type_id=3")}
            self.lineitems.append(item)
            return Canned(201, item)
        return Canned(404, {"error": "no such endpoint"})

    def _token(self, form: dict[str, str]) -> Canned:
        self.token_requests.append(form)
        try:
            header = jwt.get_unverified_header(form["client_assertion"])
            jwk = next(k for k in self.jwks["keys"] if k["kid"] == header["kid"])
            public = jwt.PyJWK(jwk).key
            jwt.decode(
                form["client_assertion"],
                public,
                algorithms=["RS256"],
                audience=self.expected_audience or self.url("/token"),
            )
        except Exception as exc:  # noqa: BLE001 - any problem is a refused assertion
            return Canned(400, {"error": "invalid_client", "error_description": str(exc)})
        token = f"tok-{len(self.token_requests)}"
        self.issued.add(token)
        return Canned(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": form["scope"]})


@pytest.fixture
def stub_lms():
    cache.clear()  # tokens are cached per (issuer, client_id, scopes): start every test without any
    ags._unreachable.clear()  # nor with a memory of a host that was down
    stub = StubPlatform()
    yield stub
    stub.stop()


def make_placement(stub: StubPlatform, *, family: str = "canvas", lineitem: bool = True, **link_kwargs: Any):
    """A registration whose token endpoint is the stub, and a resource link (with a `lineitem` claim by default)."""
    stub.jwks = keys.public_jwks()
    query = "?type_id=3" if family == "moodle" else ""
    registration = RegistrationFactory(auth_token_url=stub.url("/token"), product_family=family)
    deployment = DeploymentFactory(registration=registration)
    context = ContextFactory(
        deployment=deployment,
        # Moodle puts its tool type on every service URL; Canvas has no query string.
        lineitems_url=stub.url("/lineitems" + query),
        memberships_url=stub.url("/CourseSection/7/bindings/3/memberships"),
        ags_scopes=[
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    )
    link_kwargs.setdefault("lineitem_url", stub.url("/lineitems/7/lineitem" + query) if lineitem else "")
    resource_link = ResourceLinkFactory(context=context, **link_kwargs)
    return resource_link


def make_student(resource_link, **kwargs: Any):
    return LtiUserFactory(registration=resource_link.context.deployment.registration, **kwargs)


def launched(dev_lms, user="student1", resource_link="link1", course="course1"):
    """Launch as `user`; returns (the tool's ResourceLink, the user's LtiUser, the launch's browser session)."""
    result = dev_lms.launch(user=user, resource_link=resource_link, course=course)
    assert result.response.status_code == 200, result.response.text[:500]
    link = ResourceLink.objects.order_by("-updated_at").first()
    return link, LtiUser.objects.get(sub=dev_lms.sub(user)), result.session


def record(
    link, user, score: float | None = 3.0, *, grading="FullyGraded", activity="Completed", comment=None, **kwargs: Any
):
    """A score out of 5 recorded as the challenge set records one: in a transaction, its comment "<score> of 5"
    unless given."""
    if comment is None:
        comment = "" if score is None else f"{score:g} of 5"
    with transaction.atomic():
        return services.record_score(
            resource_link=link,
            lti_user=user,
            score_given=score,
            score_maximum=5.0,
            activity_progress=activity,
            grading_progress=grading,
            comment=comment,
            **kwargs,
        )
