"""Outbound HTTP for everything LTI: every request gets a timeout and bounded response bodies.

pylti1p3 sets no timeout on its requests; a platform that hangs must never hang a web worker.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from django.conf import settings

USER_AGENT = "ResNetChallenges-LTI/1.0"
# No platform document we read (JWKS, OpenID configuration, registration answer) comes near this.
MAX_RESPONSE_BYTES = 1_048_576


class TimeoutSession(requests.Session):
    """A requests.Session whose requests default to settings.LTI_HTTP_TIMEOUT_S."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", settings.LTI_HTTP_TIMEOUT_S)
        return super().request(method, url, *args, **kwargs)


def session() -> requests.Session:
    """A fresh session with the LTI timeout applied to every request and our User-Agent."""
    s = TimeoutSession()
    s.headers["User-Agent"] = USER_AGENT
    return s


def request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request with the LTI timeout (overridable with timeout=...)."""
    with session() as s:
        return s.request(method, url, **kwargs)


def has_nul(value: Any, _depth: int = 0) -> bool:
    """Whether a decoded JSON value holds a NUL character anywhere (keys too). No database text can store one, so
    platform data carrying it is refused as malformed instead of failing later, half stored."""
    if isinstance(value, str):
        return "\x00" in value
    if _depth > 64:
        return True  # no real LTI document nests this deep
    if isinstance(value, dict):
        return any(has_nul(k, _depth + 1) or has_nul(v, _depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v, _depth + 1) for v in value)
    return False


class FetchError(Exception):
    """A remote JSON document could not be fetched or parsed (the message is safe to show to an admin)."""


def fetch_json(method: str, url: str, *, max_bytes: int = MAX_RESPONSE_BYTES, **kwargs: Any) -> Any:
    """Request `url` and parse a JSON body of at most `max_bytes`; raise FetchError on any failure."""
    if not url.startswith(("https://", "http://")):
        raise FetchError(f"not an http(s) URL: {url[:200]}")
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    try:
        with session() as s:
            resp = s.request(method, url, headers=headers, stream=True, **kwargs)
            body = b""
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"{url[:200]} answered more than {max_bytes} bytes")
    except requests.RequestException as exc:
        raise FetchError(f"{url[:200]} could not be reached ({type(exc).__name__})") from exc
    if resp.status_code >= 400:
        raise FetchError(f"{url[:200]} answered HTTP {resp.status_code}: {body[:300].decode('utf-8', 'replace')}")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FetchError(f"{url[:200]} did not answer JSON") from exc
    if has_nul(data):
        raise FetchError(f"{url[:200]} answered JSON holding a NUL character")
    return data
