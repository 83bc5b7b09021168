"""LTI Advantage service client: client-credentials access tokens, AGS line items and scores, paging.

Built from stored registration data (never from a request-bound launch), so Celery workers can use it. Every call
has a timeout (settings.LTI_HTTP_TIMEOUT_S). Errors come out as `ServiceError` with `retryable` set the way the
outbox needs it: transport failures, 5xx, 429 (with its Retry-After) and rate-limit 403s are retryable.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
import requests
import urllib3
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.cache import cache

from lti_tool.models import Registration
from lti_tool.outbound import PlatformAddressRefused, has_nul, read_limited
from lti_tool.outbound import session as platform_session

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"

CANVAS_SUBMISSION_EXTENSION = "https://canvas.instructure.com/lti/submission"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"

# Tokens are dropped from the cache this long before the platform says they expire (clock skew, slow requests).
TOKEN_EXPIRY_MARGIN_S = 60
ASSERTION_LIFETIME_S = 300
MAX_PAGES = 200  # paging is bounded: a platform that loops its `next` links cannot keep a worker forever
ERROR_BODY_CHARS = 300
MAX_RESPONSE_BYTES = 5 * 1024 * 1024  # a roster page of thousands of members is far below this

# After a failed connection to an LMS, other calls from this process to it fail at once for this long.
UNREACHABLE_MEMO_S = 1.0

_local = threading.local()
_unreachable: dict[str, float] = {}


@dataclass
class ServiceError(Exception):
    """A failed service call. `detail` is written for an instructor; `retryable` tells the outbox what to do."""

    detail: str
    retryable: bool
    status_code: int | None = None
    body: str = ""
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return self.detail


def _session() -> requests.Session:
    # One keep-alive session per thread: requests.Session is not safe to share between threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = platform_session()  # public addresses only, like every URL learned from a platform
        _local.session = session
    return session


def close_connections() -> None:
    """Close this thread's kept-alive connections to LMSs (tests do, so no server thread waits on them)."""
    session = getattr(_local, "session", None)
    if session is not None:
        session.close()
        _local.session = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_reachable(url: str) -> None:
    """Fail fast when this process could not connect to the URL's host moments ago (a down LMS makes every queued
    score fail the same way: no need to sign a token request and open a socket for each of them)."""
    until = _unreachable.get(_origin(url))
    if until is not None and time.monotonic() < until:
        raise ServiceError("The LMS could not be reached (connection failed).", retryable=True)


def http(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One outbound HTTP call with the configured timeout; transport failures become retryable ServiceErrors."""
    kwargs.setdefault("allow_redirects", False)
    check_reachable(url)
    try:
        response = _session().request(method, url, stream=True, **kwargs)
        # Bounded input: read at most MAX_RESPONSE_BYTES of whatever the LMS sends.
        body = read_limited(response, MAX_RESPONSE_BYTES)
    except PlatformAddressRefused as exc:
        # IT's configuration, not an outage: retrying changes nothing until IT allows private addresses.
        raise ServiceError(f"The LMS address was refused: {exc}", retryable=False) from exc
    except requests.Timeout as exc:
        timeout = kwargs.get("timeout", settings.LTI_HTTP_TIMEOUT_S)  # the session's default when none is given
        raise ServiceError(f"The LMS did not answer within {timeout:g} s.", retryable=True) from exc
    except requests.ConnectionError as exc:
        _unreachable[_origin(url)] = time.monotonic() + UNREACHABLE_MEMO_S
        raise ServiceError("The LMS could not be reached (connection failed).", retryable=True) from exc
    except requests.RequestException as exc:
        raise ServiceError(f"The request to the LMS failed: {exc.__class__.__name__}.", retryable=True) from exc
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        # Errors while reading the body (a reset connection, a read timeout) surface from urllib3 directly.
        raise ServiceError("The LMS connection broke while it was answering.", retryable=True) from exc
    _unreachable.pop(_origin(url), None)
    if body is None:
        raise ServiceError("The LMS answered with more data than the tool accepts.", retryable=False)
    response._content = body
    response._content_consumed = True
    return response


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# Reason phrases that say nothing beyond the status code ("Bad Request", "Conflict", ...).
_STANDARD_REASONS = frozenset(status.phrase.lower() for status in HTTPStatus)


def platform_text(response: requests.Response) -> str:
    """What the platform said in a non-2xx answer, bounded. Moodle 4.5's AGS endpoints answer a body of `[]` and put
    their reason ("Incorrect score received...", "Refusing score with an earlier timestamp...") in the HTTP status
    line, so the reason phrase counts as text too."""
    body = (response.text or "").strip()
    reason = str(response.reason or "").strip()
    if body in ("", "[]", "{}", "null"):
        body = ""
    if reason and reason.lower() not in _STANDARD_REASONS and reason not in body:
        body = f"{reason} {body}".strip()
    return body[:ERROR_BODY_CHARS]


def error_from_response(response: requests.Response, what: str) -> ServiceError:
    """Classify a non-2xx answer: retryable (5xx, 429, rate-limit 403) or not, with the platform's text kept.
    `what` completes "while ...": "sending this score"."""
    status = response.status_code
    body = platform_text(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 or (status == 403 and "rate limit" in body.lower()):
        return ServiceError(
            f"The LMS asked the tool to slow down ({status}) while {what}.",
            retryable=True,
            status_code=status,
            body=body,
            retry_after_s=retry_after,
        )
    if status >= 500:
        return ServiceError(
            f"The LMS had an error ({status}) while {what}.",
            retryable=True,
            status_code=status,
            body=body,
            retry_after_s=retry_after,
        )
    return ServiceError(
        f"The LMS refused the request ({status}) while {what}.", retryable=False, status_code=status, body=body
    )


# --- Access tokens (client credentials with a signed JWT assertion) ----------------------------------------------


# Canvas refuses a client assertion whose `iat` is more than 30 s ahead of its clock (or over 5 minutes old);
# Moodle's JWT library says "Cannot handle token prior to ...". Either way the fix is this server's clock.
CLOCK_REFUSAL = (
    "The LMS refused our token: check this server's clock (NTP). Canvas refuses a token dated more than 30 seconds "
    "ahead of its own time. Ask IT to synchronise this server's clock; the scores are sent once it is right."
)
_CLOCK_WORDS = re.compile(r"\biat\b|in the future|prior to|not yet valid|has expired|expired token|clock", re.I)


def is_clock_refusal(platform_said: str) -> bool:
    """Whether the token endpoint's refusal is about the time the tool's assertion carries."""
    return bool(_CLOCK_WORDS.search(platform_said or ""))


def _token_cache_key(registration: Registration, scopes: tuple[str, ...]) -> str:
    raw = "\0".join([registration.issuer, registration.client_id, " ".join(sorted(scopes))])
    return "lti:service-token:" + hashlib.sha256(raw.encode()).hexdigest()


def client_assertion(registration: Registration) -> str:
    """The RS256 JWT the tool authenticates with at the platform's token endpoint."""
    from lti_tool import keys  # imported late: keys may create the first key pair (a DB write)

    key = keys.signing_key()
    # The wall clock, not config.clock: the platform judges these times by its own (a simulation runs ours ahead).
    now = int(time.time())
    claims = {
        "iss": registration.client_id,
        "sub": registration.client_id,
        "aud": registration.auth_audience or registration.auth_token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_S,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _private_key(key.kid, key.private_key_pem), algorithm="RS256", headers={"kid": key.kid})


@functools.lru_cache(maxsize=8)
def _private_key(kid: str, pem: str) -> Any:
    # Parsing (and checking) an RSA key costs tens of milliseconds; a key never changes under its kid.
    return serialization.load_pem_private_key(pem.encode(), password=None)


def access_token(registration: Registration, scopes: tuple[str, ...], *, refresh: bool = False) -> str:
    """A bearer token for `scopes`, from the shared cache or fetched anew (then cached until shortly before expiry)."""
    scopes = tuple(sorted(set(scopes)))
    key = _token_cache_key(registration, scopes)
    if not refresh:
        cached = cache.get(key)
        if cached:
            return cached
    check_reachable(registration.auth_token_url)
    response = http(
        "POST",
        registration.auth_token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(registration),
            "scope": " ".join(scopes),
        },
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        error = error_from_response(response, "issuing an access token to the tool")
        if is_clock_refusal(error.body):
            error.detail = f"{CLOCK_REFUSAL} The LMS said: {error.body[:200]}"
        # A refused token is usually configuration (key not yet known, tool disabled, a clock to set): fixable, so
        # keep retrying within the budget rather than giving up on the student's score.
        error.retryable = True
        raise error
    try:
        data = response.json()
        token = str(data["access_token"])
        expires_in = float(data.get("expires_in") or 3600)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError("The LMS answered the token request with something unreadable.", retryable=True) from exc
    ttl = expires_in - TOKEN_EXPIRY_MARGIN_S if expires_in > 2 * TOKEN_EXPIRY_MARGIN_S else expires_in / 2
    if ttl >= 1:
        cache.set(key, token, timeout=int(ttl))
    return token


def service_request(
    registration: Registration, method: str, url: str, scopes: tuple[str, ...], **kwargs: Any
) -> requests.Response:
    """An authorised service call; a 401 refreshes the token once and repeats the call."""
    headers = dict(kwargs.pop("headers", {}) or {})
    for attempt in range(2):
        token = access_token(registration, scopes, refresh=attempt > 0)
        response = http(method, url, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code != 401:
            return response
        cache.delete(_token_cache_key(registration, tuple(sorted(set(scopes)))))
    return response


# --- URLs and paging --------------------------------------------------------------------------------------------


def scores_url(lineitem_url: str) -> str:
    """The scores endpoint of a line item: `/scores` appended to the path, before any query (Moodle's ?type_id=)."""
    return _line_item_endpoint(lineitem_url, "scores")


def results_url(lineitem_url: str) -> str:
    """The results endpoint of a line item, built like its scores endpoint."""
    return _line_item_endpoint(lineitem_url, "results")


def _line_item_endpoint(lineitem_url: str, name: str) -> str:
    parts = urlsplit(lineitem_url)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path.rstrip('/')}/{name}", parts.query, ""))


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with extra query parameters, keeping the ones it has (and its exact case)."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def next_link(link_header: str | None) -> str | None:
    """The `rel="next"` URL of a Link header, exactly as written (pylti1p3 lower-cases it, breaking Moodle)."""
    if not link_header:
        return None
    for part in _split_links(link_header):
        part = part.strip()
        if not part.startswith("<") or ">" not in part:
            continue
        url, _, params = part[1:].partition(">")
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return url.strip()
    return None


def _split_links(header: str) -> list[str]:
    # Commas separate links but may also appear inside the <URL>.
    parts, depth, current = [], 0, []
    for char in header:
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def get_pages(
    registration: Registration, url: str, scopes: tuple[str, ...], accept: str, what: str
) -> list[dict[str, Any] | list[Any]]:
    """GET `url` and every `next` page after it (at most MAX_PAGES); returns the decoded JSON bodies in order."""
    return fetch_pages(registration, url, scopes, accept, what)[0]


def fetch_pages(
    registration: Registration, url: str, scopes: tuple[str, ...], accept: str, what: str, *, max_pages: int = MAX_PAGES
) -> tuple[list[dict[str, Any] | list[Any]], bool]:
    """GET `url` and every `next` page after it: the decoded JSON bodies in order, and whether pages were left
    unread because there were more than `max_pages` (a `next` link back to a page already read just ends)."""
    bodies: list[Any] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url and next_url not in seen:
        if len(bodies) >= max_pages:
            return bodies, True
        seen.add(next_url)
        response = service_request(registration, "GET", next_url, scopes, headers={"Accept": accept})
        if response.status_code != 200:
            raise error_from_response(response, what)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServiceError(f"The LMS answered with something unreadable while {what}.", retryable=True) from exc
        if has_nul(body):
            raise ServiceError(f"The LMS answered with a NUL character while {what}.", retryable=False)
        bodies.append(body)
        next_url = next_link(response.headers.get("Link"))
        if next_url and _origin(next_url) != _origin(url):
            # Never send the bearer token to another host, whatever a Link header says.
            raise ServiceError("The LMS pointed the next page to another host; the tool did not follow.", False)
    return bodies, False


# --- AGS --------------------------------------------------------------------------------------------------------


def granted(registration: Registration, wanted: tuple[str, ...], offered: list[str] | None) -> tuple[str, ...]:
    """The scopes to ask for: `wanted`, narrowed to what the launch's AGS claim offered when it listed any."""
    if offered:
        narrowed = tuple(scope for scope in wanted if scope in offered)
        if narrowed:
            return narrowed
    return wanted


def find_line_item(
    registration: Registration, lineitems_url: str, *, resource_link_id: str, tag: str, scopes: tuple[str, ...]
) -> dict[str, Any] | None:
    """The platform's line item for this resource link: ours by tag if there is one, else the link's first."""
    url = with_query(lineitems_url, {"resource_link_id": resource_link_id})
    items: list[dict[str, Any]] = []
    for body in get_pages(registration, url, scopes, MEDIA_LINEITEM_CONTAINER, "looking up the gradebook column"):
        items.extend(item for item in (body if isinstance(body, list) else []) if isinstance(item, dict))
    # Platforms may ignore the filter: check resourceLinkId ourselves.
    items = [item for item in items if item.get("resourceLinkId") in (None, resource_link_id) and item.get("id")]
    linked = [item for item in items if item.get("resourceLinkId") == resource_link_id]
    for item in linked:
        if item.get("tag") == tag:
            return item
    # Canvas: only the first line item created for a resource link updates the gradebook submission.
    return linked[0] if linked else None


def submission_review() -> dict[str, Any]:
    """The `submissionReview` of every line item the tool creates or returns (deep linking included): the LMS may
    then link its gradebook to a student's work in the tool (an LtiSubmissionReviewRequest; Moodle 4.5 does). No
    `url`: the review launches the resource link's own URL, which routes it by message type."""
    return {
        "reviewableStatus": ["InProgress", "Submitted", "Completed"],
        "label": f"Open in {settings.LTI_TOOL_TITLE}"[:100],
    }


def create_line_item(
    registration: Registration,
    lineitems_url: str,
    *,
    resource_link_id: str,
    label: str,
    score_maximum: float,
    tag: str,
    resource_id: str,
    scopes: tuple[str, ...],
) -> dict[str, Any]:
    """Create a line item coupled to the resource link; returns the platform's representation (with `id`)."""
    payload = {
        "label": label[:255] or "ResNet challenges",
        "scoreMaximum": score_maximum,
        "resourceLinkId": resource_link_id,
        "tag": tag,
        "resourceId": resource_id,
        "submissionReview": submission_review(),
    }
    response = service_request(
        registration,
        "POST",
        lineitems_url,
        scopes,
        json=payload,
        headers={"Content-Type": MEDIA_LINEITEM, "Accept": MEDIA_LINEITEM},
    )
    if response.status_code not in (200, 201):
        raise error_from_response(response, "creating the gradebook column")
    try:
        item = response.json()
    except ValueError as exc:
        raise ServiceError("The LMS created the gradebook column but its answer was unreadable.", True) from exc
    if not isinstance(item, dict) or not item.get("id"):
        raise ServiceError("The LMS created the gradebook column without telling its address.", retryable=True)
    if has_nul(item):
        raise ServiceError("The LMS created the gradebook column but its answer held a NUL character.", True)
    return item


def score_payload(
    *,
    user_id: str,
    score_given: float | None,
    score_maximum: float,
    activity_progress: str,
    grading_progress: str,
    timestamp: str,
    comment: str,
    new_submission: bool,
    submitted_at: str = "",
    prioritize_non_tool_grade: bool = False,
    canvas_extension: bool = True,
) -> dict[str, Any]:
    """The AGS score JSON, with the Canvas submission extension unless `canvas_extension` is off (Moodle).

    scoreGiven/scoreMaximum only with FullyGraded (elsewhere they clear or are ignored); `preserve_score` keeps an
    existing Canvas grade whenever this is not a final score; `new_submission` (Canvas's default is true) is set only
    on the first score of a hand-in, so progress and regrades open no submission (nor hit the attempt limit);
    `submitted_at` dates the hand-in (lateness); `prioritize_non_tool_grade` keeps a grade already in Canvas.
    """
    payload: dict[str, Any] = {
        "userId": user_id,
        "activityProgress": activity_progress,
        "gradingProgress": grading_progress,
        "timestamp": timestamp,
    }
    if grading_progress == "FullyGraded" and score_given is not None:
        payload["scoreGiven"] = score_given
        payload["scoreMaximum"] = score_maximum
    if comment:
        payload["comment"] = comment
    if not canvas_extension:
        return payload
    extension: dict[str, Any] = {"new_submission": new_submission}
    if grading_progress != "FullyGraded":
        extension["preserve_score"] = True
    elif prioritize_non_tool_grade:
        extension["prioritize_non_tool_grade"] = True
    if submitted_at:
        extension["submitted_at"] = submitted_at
    payload[CANVAS_SUBMISSION_EXTENSION] = extension
    return payload


def current_result(
    registration: Registration, lineitem_url: str, user_id: str, scopes: tuple[str, ...]
) -> dict[str, Any] | None:
    """The LMS's result for one user in a line item (AGS results service), or None when it holds none."""
    url = with_query(results_url(lineitem_url), {"user_id": user_id})
    for body in get_pages(registration, url, scopes, MEDIA_RESULT_CONTAINER, "reading the grade in the LMS"):
        for result in body if isinstance(body, list) else []:
            if isinstance(result, dict) and str(result.get("userId", "")) == user_id:
                return result
    return None


def post_score(
    registration: Registration, lineitem_url: str, payload: dict[str, Any], scopes: tuple[str, ...]
) -> requests.Response:
    """POST a score to the line item's scores endpoint; returns the response whatever its status."""
    return service_request(
        registration,
        "POST",
        scores_url(lineitem_url),
        scopes,
        json=payload,
        headers={"Content-Type": MEDIA_SCORE},
    )
