"""The LTI test harness: the development LMS as the protocol peer, driven over real HTTP like a browser would.

The `dev_lms` fixture (tests/conftest.py) gives a `DevLms` bound to pytest-django's `live_server`. The platform side
(the devlms models and services) is used directly from Python where a real LMS admin would click; everything between
the platform and the tool goes over HTTP with signed JWTs.
"""

from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from lti_tool.devlms import jose, services
from lti_tool.devlms.models import Course, Enrollment, Fault, LineItem, Person, ResourceLink, Score, ScoreEvent, Tool
from lti_tool.devlms.services import LaunchRequest, Platform

HTTP_TIMEOUT_S = 30
MAX_HOPS = 10


@dataclass
class LaunchResult:
    """The browser session after a launch, and the final response (after the tool's redirects)."""

    session: requests.Session
    response: requests.Response


@dataclass
class DeepLinkReturn:
    """The platform's answer to a deep-linking response, and the slugs of the resource links it created."""

    response: requests.Response
    links: list[str] = field(default_factory=list)


@dataclass
class HtmlForm:
    action: str
    method: str
    fields: dict[str, str]
    id: str = ""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []
        self._current: HtmlForm | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = HtmlForm(a.get("action", ""), a.get("method", "get").lower(), {}, a.get("id", ""))
            self.forms.append(self._current)
        elif self._current is not None and tag in {"input", "button"} and a.get("name"):
            if a.get("type") in {"checkbox", "radio"} and "checked" not in a:
                return
            if tag == "button" or a.get("type") in {"submit", "button"}:
                return
            self._current.fields[a["name"]] = a.get("value", "")
        elif self._current is not None and tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._current.fields[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self._current is not None and self._textarea:
            self._current.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(page: str, base_url: str = "") -> list[HtmlForm]:
    """Every form in an HTML page, with absolute actions and the values of their named fields."""
    parser = _FormParser()
    parser.feed(page)
    for form in parser.forms:
        form.action = urljoin(base_url, form.action) if base_url else form.action
    return parser.forms


def form_posting_to(page: Any, action_part: str) -> HtmlForm:
    """The first form of a requests response's page whose action contains `action_part`."""
    forms = [f for f in parse_forms(page.text, page.url) if action_part in f.action]
    assert forms, f"no form posting to {action_part!r} in {page.url}:\n{page.text[:1500]}"
    return forms[0]


def post_form(session: Any, page: Any, action_part: str, **fields: str) -> Any:
    """Submit that form as a browser would (its own fields, CSRF token included), with `fields` filled in."""
    form = form_posting_to(page, action_part)
    return session.post(form.action, data={**form.fields, **fields}, timeout=30)


_OPTION = re.compile(
    r'<input type="radio" name="choice" id="choice-([A-H])" value="([^"]+)" required>\s*'
    r'<label for="choice-\1"><span class="key">\1</span> (.*?)</label>',
    re.S,
)


def choice_options(page: str) -> dict[str, tuple[str, str]]:
    """A question page's options as a student reads them: {option text: (letter shown, value the form submits)}."""
    return {html.unescape(text): (letter, value) for letter, value, text in _OPTION.findall(page)}


class DevLms:
    """The development LMS running inside pytest-django's live server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.platform = Platform(self.base_url)
        #: The tool's base URL and the platform's base URL are the same server in tests.
        self.url = self.base_url + "/devlms/"
        self.issuer = self.platform.issuer
        self.tool: Tool | None = None
        services.ensure_seed()

    # --- Registration -------------------------------------------------------------------------------------------

    def register_tool(
        self, style: str = "canvas", *, install: bool = True, scopes: list[str] | None = None
    ) -> dict[str, Any]:
        """Register the tool by real Dynamic Registration through its /lti/register/ page (the test plays the
        admin's browser, the tool calls the platform over HTTP), then install (Canvas) or activate (Moodle) it.

        Returns {"client_id", "deployment_id" (Canvas: the one created at install), "issuer", "style", "tool_pk",
        "scopes", "registration" (what the tool posted), "response" (the tool's registration page)}.
        """
        token = services.start_registration(style, granted_scopes=scopes)
        config_url = self.platform.url("openid_configuration", {"canvas": 1} if style == "canvas" else None)
        session = requests.Session()
        before = Tool.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        response = session.get(
            self.base_url + "/lti/register/",
            params={"openid_configuration": config_url, "registration_token": token.token},
            timeout=HTTP_TIMEOUT_S,
        )
        # A tool may ask the admin to confirm in a form first: submit it as the browser would.
        for _ in range(3):
            if Tool.objects.filter(pk__gt=before).exists() or response.status_code >= 400:
                break
            forms = [f for f in parse_forms(response.text, response.url) if "/lti/register" in f.action]
            if not forms:
                break
            form = forms[0]
            response = session.request(
                form.method.upper(),
                form.action,
                data=form.fields if form.method == "post" else None,
                params=form.fields if form.method != "post" else None,
                timeout=HTTP_TIMEOUT_S,
                headers={"Referer": response.url},
            )
        tool = Tool.objects.filter(pk__gt=before).order_by("-pk").first()
        if tool is None:
            raise AssertionError(
                f"Dynamic Registration did not reach the platform: HTTP {response.status_code}\n{response.text[:2000]}"
            )
        if install:
            services.install_tool(tool)
        tool.refresh_from_db()
        self.tool = tool
        return {
            "client_id": tool.client_id,
            "deployment_id": tool.deployment_id,
            "issuer": self.issuer,
            "style": tool.style,
            "tool_pk": tool.pk,
            "scopes": tool.scope_list,
            "registration": tool.registration,
            "response": response,
        }

    def _tool(self) -> Tool:
        tool = self.tool or services.current_tool()
        if tool is None:
            raise AssertionError("register_tool() first")
        return tool

    # --- Launches -----------------------------------------------------------------------------------------------

    def login_initiation(
        self,
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        message_type: str = "LtiResourceLinkRequest",
        custom: dict[str, str] | None = None,
        roles: list[str] | None = None,
        for_user: str | None = None,
        document_target: str = "iframe",
        domain: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The tool's login URL and the query parameters the platform sends there."""
        request = LaunchRequest(
            user=user,
            course=course,
            resource_link=resource_link if message_type != "LtiDeepLinkingRequest" else None,
            message_type=message_type,
            custom=custom,
            roles=roles,
            document_target=document_target,
            for_user=for_user,
            domain=domain,
        )
        return services.login_initiation(self.platform, request, self._tool())

    def _to_auth_request(self, session: requests.Session, url: str, params: dict[str, str]) -> tuple[str, dict]:
        """Run the tool's login initiation until it hands the browser to the platform's auth endpoint.

        Returns (auth URL, auth parameters) without calling the platform.
        """
        auth_prefix = self.platform.url("auth")
        response = session.get(url, params=params, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
        for _ in range(MAX_HOPS):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if location.startswith(auth_prefix):
                    return location.split("?")[0], {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                response = session.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
                continue
            if response.status_code != 200:
                break
            # A cookie-check page: the auth request is in a form or a script-driven location.
            for form in parse_forms(response.text, response.url):
                if form.action.startswith(auth_prefix):
                    return form.action.split("?")[0], dict(form.fields)
            match = re.search(re.escape(auth_prefix) + r"[^\"'<>\s]*", html.unescape(response.text))
            if match:
                location = match.group(0).replace("\\u0026", "&").replace("\\/", "/")
                return location.split("?")[0], {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            break
        raise AssertionError(
            f"The tool's login did not send the browser to the platform: HTTP {response.status_code} "
            f"{response.url}\n{response.text[:2000]}"
        )

    def start_login(
        self,
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        message_type: str = "LtiResourceLinkRequest",
        session: requests.Session | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Session, str, str]:
        """Login initiation only, for forged-launch tests: (browser session with the tool's state cookie, state,
        nonce). Post a token made with `mint_id_token(..., nonce=nonce)` via `post_launch(session, token, state)`."""
        session = session or requests.Session()
        url, params = self.login_initiation(user, course, resource_link, message_type, **kwargs)
        _, auth_params = self._to_auth_request(session, url, params)
        return session, auth_params.get("state", ""), auth_params.get("nonce", "")

    def launch(
        self,
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        message_type: str = "LtiResourceLinkRequest",
        custom: dict[str, str] | None = None,
        roles: list[str] | None = None,
        session: requests.Session | None = None,
        for_user: str | None = None,
        document_target: str = "iframe",
        domain: str | None = None,
    ) -> LaunchResult:
        """The whole browser flow: tool login -> platform auth -> auto-posted id_token+state -> tool's redirects.

        `domain`: the origin the user reached the LMS at (a school's own Canvas domain): it is in the launch's return
        URL and, as a browser on that page would send it, in the id_token POST's Origin header."""
        session = session or requests.Session()
        url, params = self.login_initiation(
            user, course, resource_link, message_type, custom, roles, for_user, document_target, domain
        )
        auth_url, auth_params = self._to_auth_request(session, url, params)
        page = session.post(auth_url, data=auth_params, timeout=HTTP_TIMEOUT_S)
        forms = [f for f in parse_forms(page.text, page.url) if f.id == "devlms-autopost"]
        if page.status_code != 200 or not forms:
            raise AssertionError(f"The platform refused the auth request: HTTP {page.status_code}\n{page.text[:2000]}")
        form = forms[0]
        headers = {"Origin": domain} if domain else None
        response = session.post(form.action, data=form.fields, headers=headers, timeout=HTTP_TIMEOUT_S)
        return LaunchResult(session=session, response=response)

    def launch_claims(
        self,
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        message_type: str = "LtiResourceLinkRequest",
        nonce: str = "nonce",
        custom: dict[str, str] | None = None,
        roles: list[str] | None = None,
        for_user: str | None = None,
    ) -> dict[str, Any]:
        """The claims the platform would sign for this launch (a valid starting point for forged tokens)."""
        request = LaunchRequest(
            user=user,
            course=course,
            resource_link=resource_link if message_type != "LtiDeepLinkingRequest" else None,
            message_type=message_type,
            custom=custom,
            roles=roles,
            for_user=for_user,
        )
        return services.launch_claims(self.platform, request, self._tool(), nonce)

    def mint_id_token(
        self,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        key: Any = None,
        *,
        nonce: str = "nonce",
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        message_type: str = "LtiResourceLinkRequest",
    ) -> str:
        """A launch id_token: valid claims for (user, course, link) with `claims` merged over them (a value of None
        removes the claim) and `header` merged over {"alg": "RS256", "typ": "JWT", "kid": <platform kid>}.

        `key`: None signs with the platform key (HS256: the platform's public JWK text as the secret, the classic
        key-confusion attack); a PEM or RSA key object for RS256 with another key; bytes/str for HS256.
        """
        payload = self.launch_claims(user, course, resource_link, message_type, nonce)
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        platform_key = jose.platform_key()
        head = {"alg": "RS256", "typ": "JWT", "kid": platform_key.kid}
        for name, value in (header or {}).items():
            if value is None:
                head.pop(name, None)
            else:
                head[name] = value
        if key is None:
            if head.get("alg") == "HS256":
                key = jose.public_pem(platform_key)
            else:
                key = platform_key.private_key_pem
        return jose.encode_jws(payload, head, key)

    def post_launch(self, session: requests.Session, id_token: str, state: str, **extra: str) -> requests.Response:
        """POST an id_token and state to the tool's launch URL, as the platform's form would."""
        return session.post(
            self.base_url + "/lti/launch/", data={"id_token": id_token, "state": state, **extra}, timeout=HTTP_TIMEOUT_S
        )

    # --- Deep linking -------------------------------------------------------------------------------------------

    def deep_link_return(
        self, page: requests.Response | str, session: requests.Session | None = None, base_url: str = ""
    ) -> DeepLinkReturn:
        """Submit the tool's deep-linking response form (found in `page`) to the platform's return URL."""
        text = page if isinstance(page, str) else page.text
        base = base_url or (page.url if isinstance(page, requests.Response) else self.base_url)
        target = self.platform.url("deep_link_return")
        forms = [f for f in parse_forms(text, base) if f.action.startswith(target)]
        if not forms:
            raise AssertionError(f"No form posting to {target} in the page:\n{text[:2000]}")
        response = (session or requests.Session()).post(forms[0].action, data=forms[0].fields, timeout=HTTP_TIMEOUT_S)
        links = re.findall(r'data-resource-link="([^"]+)"', response.text)
        return DeepLinkReturn(response=response, links=links)

    # --- Gradebook and roster -----------------------------------------------------------------------------------

    def _line_item(self, course: str, resource_link: str | None, lineitem: str | None) -> LineItem:
        c = Course.objects.get(slug=course)
        if lineitem is not None:
            # A line item URL (as the tool knows it) or a label.
            match = re.search(r"/lineitems/(\d+)/lineitem", lineitem)
            return (
                LineItem.objects.get(course=c, pk=int(match.group(1)))
                if match
                else LineItem.objects.get(course=c, label=lineitem)
            )
        link = ResourceLink.objects.get(course=c, slug=resource_link or "link1")
        if link.line_item_id:
            return link.line_item
        item = LineItem.objects.filter(resource_link=link).order_by("pk").first()
        if item is None:
            raise AssertionError(f"{course}/{resource_link} has no gradebook column")
        return item

    def scores(
        self,
        course: str = "course1",
        resource_link: str | None = "link1",
        user: str | None = None,
        lineitem: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every score POST the platform received for the column (accepted and refused), oldest first:
        [{"user", "payload", "status", "detail", "received_at"}]. Filter by `user` (username)."""
        events = ScoreEvent.objects.filter(line_item=self._line_item(course, resource_link, lineitem))
        if user:
            events = events.filter(person__username=user)
        return [
            {
                "user": e.person.username if e.person else None,
                "payload": e.payload,
                "status": e.status_code,
                "detail": e.detail,
                "received_at": e.received_at,
            }
            for e in events.select_related("person").order_by("pk")
        ]

    def result(
        self,
        course: str = "course1",
        resource_link: str | None = "link1",
        user: str = "student1",
        lineitem: str | None = None,
    ) -> dict[str, Any] | None:
        """The gradebook cell now: {"score_given" (rescaled to the column), "score_maximum", "activity_progress",
        "grading_progress", "comment", "timestamp"}, or None when the tool never posted for this user."""
        score = Score.objects.filter(
            line_item=self._line_item(course, resource_link, lineitem), person__username=user
        ).first()
        if score is None:
            return None
        return {
            "score_given": score.score_given,
            "score_maximum": score.score_maximum,
            "activity_progress": score.activity_progress,
            "grading_progress": score.grading_progress,
            "comment": score.comment,
            "timestamp": score.timestamp,
            # Canvas: the grade of a pass/fail column, who graded last, how many submissions and the last one's time.
            "grade": score.grade,
            "grader": score.grader,
            "attempt": score.attempt,
            "submitted_at": score.submitted_at,
            "result_score": score.result_score,
        }

    def grade_by_hand(
        self,
        score: float | None,
        user: str = "student1",
        course: str = "course1",
        resource_link: str | None = "link1",
        teacher: str = "instructor1",
    ) -> requests.Response:
        """A teacher changes a grade on the gradebook page (the form a person submits, over HTTP)."""
        item = self._line_item(course, resource_link, None)
        session = requests.Session()
        url = self.platform.url("gradebook", course_slug=course)
        page = session.get(url, params={"user": teacher}, timeout=HTTP_TIMEOUT_S)
        form = next(f for f in parse_forms(page.text, page.url) if "csrfmiddlewaretoken" in f.fields)
        fields = {**form.fields, "item": str(item.pk), "student": user, "score": "" if score is None else str(score)}
        return session.post(form.action, data=fields, headers={"Referer": page.url}, timeout=HTTP_TIMEOUT_S)

    def set_pass_fail(self, course: str = "course1", resource_link: str | None = "link1") -> None:
        """Make the column a Canvas complete/incomplete assignment."""
        item = self._line_item(course, resource_link, None)
        LineItem.objects.filter(pk=item.pk).update(grading_type="pass_fail")

    def line_items(self, course: str = "course1") -> list[dict[str, Any]]:
        """The course's gradebook columns."""
        return [
            {
                "pk": i.pk,
                "label": i.label,
                "score_maximum": i.score_maximum,
                "resource_id": i.resource_id,
                "tag": i.tag,
                "resource_link": i.resource_link.slug if i.resource_link else None,
            }
            for i in LineItem.objects.filter(course__slug=course).select_related("resource_link").order_by("pk")
        ]

    def add_resource_link(
        self,
        course: str = "course1",
        slug: str | None = None,
        title: str = "Activity",
        custom: dict[str, str] | None = None,
        line_item: dict[str, Any] | None = None,
    ) -> str:
        """Place a new link (optionally with a column: {"label", "scoreMaximum", "resourceId", "tag"}); its slug."""
        link = services.add_resource_link(
            services.get_course(course), slug=slug, title=title, custom=custom, line_item=line_item, tool=self.tool
        )
        return link.slug

    def enroll(self, user: str, course: str = "course1") -> None:
        services.ensure_enrollment(services.get_course(course), services.ensure_person(user))
        Enrollment.objects.filter(course__slug=course, person__username=user).update(active=True)

    def unenroll(self, user: str, course: str = "course1") -> None:
        """Drop a user from the course (their scores are then refused: Canvas 422, Moodle 400)."""
        Enrollment.objects.filter(course__slug=course, person__username=user).update(active=False)

    def conclude_course(self, course: str = "course1") -> None:
        """End the course (every AGS call on it answers 404)."""
        Course.objects.filter(slug=course).update(concluded=True)

    def set_style(self, course: str, style: str) -> None:
        """Make one course behave like "canvas" or "moodle" whatever the tool registered as."""
        Course.objects.filter(slug=course).update(style=style)

    def sub(self, user: str) -> str:
        """The LTI `sub` of a platform user."""
        return services.ensure_person(user).sub

    def person(self, user: str) -> Person:
        return services.ensure_person(user)

    # --- Faults and keys ----------------------------------------------------------------------------------------

    def set_fault(self, mode: str, count: int | None = None, seconds: float | None = None) -> None:
        """Make token/AGS/NRPS misbehave: "down" (503), "5xx" (502), "429" (Retry-After: seconds), "slow" (sleep
        seconds); for the next `count` requests or until `clear_faults()`."""
        services.set_fault(mode, count, seconds)

    def clear_faults(self) -> None:
        services.clear_faults()

    def fault_hits(self) -> int:
        """How many requests the current fault has answered."""
        fault = Fault.objects.filter(pk=1).first()
        return fault.hits if fault else 0

    def expire_access_tokens(self) -> int:
        """Expire every issued access token (the tool's next call gets 401)."""
        return services.expire_access_tokens()

    def rotate_key(self, retire_old: bool = False) -> str:
        """Sign launches with a new platform key (kid returned); the old one stays in the JWKS unless retired."""
        return jose.rotate_platform_key(retire_old=retire_old).kid

    def wait_for(self, predicate: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
        """Poll `predicate()` until it returns something truthy (for asynchronous deliveries)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(interval)


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve `handler` on 127.0.0.1, a free port, from a daemon thread; returns the server and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop_serving(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class ToolPeer:
    """A minimal stand-in for a *tool*, used only to test the platform side alone: it serves a JWKS over HTTP and
    signs what a tool signs (client assertions, deep-linking responses). The real tool is tested with `DevLms`."""

    _shared_pem: str | None = None

    def __init__(self) -> None:
        import json

        self.kid = "peer-key-1"
        # One key per test process: RSA generation is slow and a stand-in tool needs no fresh key per test.
        if ToolPeer._shared_pem is None:
            ToolPeer._shared_pem = jose.generate_rsa_pem()
        self.private_key_pem = ToolPeer._shared_pem
        self.jwks = {"keys": [jose.public_jwk_from_pem(self.private_key_pem, self.kid)]}
        self.jwks_requests = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path.startswith("/jwks"):
                    peer.jwks_requests += 1
                    body = json.dumps(peer.jwks).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    body = b"tool page"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def close(self) -> None:
        stop_serving(self.server)

    def registration_body(self, scopes: list[str] | None = None) -> dict[str, Any]:
        """The client registration a tool posts in Dynamic Registration."""
        return {
            "application_type": "web",
            "grant_types": ["client_credentials", "implicit"],
            "response_types": ["id_token"],
            "initiate_login_uri": self.url + "/login",
            "redirect_uris": [self.url + "/launch"],
            "client_name": "Peer tool",
            "jwks_uri": self.url + "/jwks",
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": " ".join(scopes if scopes is not None else services.SUPPORTED_SCOPES),
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                "domain": "127.0.0.1",
                "target_link_uri": self.url + "/launch",
                "claims": ["iss", "sub", "name", "email"],
                "messages": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest", "target_link_uri": self.url + "/deep-link"},
                ],
            },
        }

    def register(
        self, lms: DevLms, style: str = "canvas", *, install: bool = True, scopes: list[str] | None = None
    ) -> tuple[Tool, dict[str, Any]]:
        """Dynamic Registration from the tool's side, over HTTP: (the platform's Tool row, its JSON answer)."""
        token = services.start_registration(style)
        response = requests.post(
            lms.platform.url("registration"),
            json=self.registration_body(scopes),
            headers={"Authorization": f"Bearer {token.token}"},
            timeout=HTTP_TIMEOUT_S,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        tool = Tool.objects.get(client_id=answer["client_id"])
        if install:
            tool = services.install_tool(tool)
        lms.tool = tool
        return tool, answer

    def sign(self, payload: dict[str, Any], key_pem: str | None = None, kid: str | None = None) -> str:
        return jose.encode_jws(
            payload, {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}, key_pem or self.private_key_pem
        )

    def assertion(self, lms: DevLms, client_id: str, **overrides: Any) -> str:
        import secrets

        now = int(time.time())
        payload = {
            "iss": client_id,
            "sub": client_id,
            "aud": lms.platform.token_url,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(16),
        }
        payload.update(overrides)
        return self.sign(payload)

    def request_token(self, lms: DevLms, client_id: str, scopes: list[str], assertion: str | None = None):
        return requests.post(
            lms.platform.token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion or self.assertion(lms, client_id),
                "scope": " ".join(scopes),
            },
            timeout=HTTP_TIMEOUT_S,
        )

    def access_token(self, lms: DevLms, client_id: str, scopes: list[str] | None = None) -> str:
        response = self.request_token(lms, client_id, scopes or services.SUPPORTED_SCOPES)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]
