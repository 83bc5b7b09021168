"""Outbound HTTP for everything LTI: every request gets a timeout and bounded response bodies.

pylti1p3 sets no timeout on its requests; a platform that hangs must never hang a web worker.

Every platform URL (OpenID configuration, registration endpoint, JWKS, token, AGS/NRPS endpoints) is fetched through
`session()`, whose connections refuse loopback, private, link-local and other non-public addresses unless
settings.LTI_ALLOW_PRIVATE_PLATFORM_URLS: an anonymous Dynamic Registration must not make the tool probe the
internal network or a cloud metadata service. The check is on the address actually connected: the name is resolved
once, every address is checked, and the socket connects to a checked address (a DNS answer that changes between a
check and the connection cannot slip through).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from typing import Any

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

logger = logging.getLogger(__name__)

USER_AGENT = "ResNetChallenges-LTI/1.0"
# No platform document we read (JWKS, OpenID configuration, registration answer) comes near this.
MAX_RESPONSE_BYTES = 1_048_576


class FetchError(Exception):
    """A remote document could not be fetched or parsed. The message never holds what the remote answered (the
    caller may be anonymous); it is safe to show to whoever asked."""


class PlatformAddressRefused(FetchError):
    """A platform URL's host resolves to a non-public address and LTI_ALLOW_PRIVATE_PLATFORM_URLS is off.

    Deliberately neither an OSError nor a urllib3/requests error: it passes through their retries and wrapping
    untouched (no other address is tried), so callers can tell it from an unreachable host.
    """

    def __init__(self, host: str, address: str) -> None:
        # The address stays out of the message (an anonymous caller would learn what internal names resolve to);
        # IT finds it in the log.
        super().__init__(
            f"{host[:200]} is not on the public internet; the tool connects to such addresses only when its IT "
            "allows it (LTI_ALLOW_PRIVATE_PLATFORM_URLS)."
        )
        logger.warning(
            "Platform URL refused: not a public address",
            extra={"event": "platform_address_refused", "host": host[:200], "address": address},
        )
        self.host = host
        self.address = address


def is_public_address(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local, shared, reserved...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local anyway
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """Resolve `host` once and return its addresses; PlatformAddressRefused if any of them is not public."""
    infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not is_public_address(address):
            raise PlatformAddressRefused(host, address)
    return addresses


class _PublicOnlyConnectionMixin:
    """Connects only to checked public addresses (unless settings.LTI_ALLOW_PRIVATE_PLATFORM_URLS).

    urllib3 connects to `_dns_host`; it is pointed at each checked address in turn and restored afterwards, so TLS
    still sends and verifies the URL's host name.
    """

    _dns_host: str
    host: str
    port: int

    def _new_conn(self) -> socket.socket:
        if settings.LTI_ALLOW_PRIVATE_PLATFORM_URLS:
            return super()._new_conn()  # type: ignore[misc]
        name = self._dns_host
        try:
            addresses = public_addresses(name, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        try:
            for i, address in enumerate(addresses):
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except (NewConnectionError, ConnectTimeoutError):
                    if i == len(addresses) - 1:
                        raise
            raise NameResolutionError(self.host, self, socket.gaierror("no address"))  # type: ignore[arg-type]
        finally:
            self._dns_host = name


class _PublicHTTPConnection(_PublicOnlyConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnlyConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _PublicHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A requests adapter whose connections go only to public addresses (see _PublicOnlyConnectionMixin).

    Requests sent through an HTTP(S)_PROXY from the environment connect to the proxy, which then decides.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPConnectionPool,
            "https": _PublicHTTPSConnectionPool,
        }


class TimeoutSession(requests.Session):
    """A requests.Session whose requests default to settings.LTI_HTTP_TIMEOUT_S."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", settings.LTI_HTTP_TIMEOUT_S)
        return super().request(method, url, *args, **kwargs)


def session(*, public_only: bool = True) -> requests.Session:
    """A fresh session for platform URLs: the LTI timeout on every request, our User-Agent, public addresses only.

    public_only=False is for the development LMS alone, which fetches the tool's own URLs (usually on localhost).
    """
    s = TimeoutSession()
    s.headers["User-Agent"] = USER_AGENT
    if public_only:
        adapter = PublicOnlyAdapter()
        s.mount("http://", adapter)
        s.mount("https://", adapter)
    return s


def request(method: str, url: str, *, public_only: bool = True, **kwargs: Any) -> requests.Response:
    """One request with the LTI timeout (overridable with timeout=...)."""
    with session(public_only=public_only) as s:
        return s.request(method, url, **kwargs)


def read_limited(response: requests.Response, max_bytes: int) -> bytes | None:
    """The body of a response requested with stream=True, or None (connection closed) when it is over `max_bytes`.

    Raises OSError or urllib3.exceptions.HTTPError when the connection breaks while the body is read.
    """
    body = response.raw.read(max_bytes + 1, decode_content=True)
    if len(body) > max_bytes:
        response.close()
        return None
    response.raw.release_conn()  # read to the end: the connection can be kept alive
    return body


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


def fetch_json(
    method: str, url: str, *, max_bytes: int = MAX_RESPONSE_BYTES, public_only: bool = True, **kwargs: Any
) -> Any:
    """Request `url` and parse a JSON body of at most `max_bytes`; raise FetchError on any failure."""
    if not url.startswith(("https://", "http://")):
        raise FetchError(f"not an http(s) URL: {url[:200]}")
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    try:
        with session(public_only=public_only) as s:
            resp = s.request(method, url, headers=headers, stream=True, **kwargs)
            body = read_limited(resp, max_bytes)
    except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise FetchError(f"{url[:200]} could not be reached ({type(exc).__name__})") from exc
    if body is None:
        raise FetchError(f"{url[:200]} answered more than {max_bytes} bytes")
    if resp.status_code >= 400:
        # The platform's answer goes to the log for IT, never into the message (an anonymous caller may see it).
        logger.warning(
            "Platform URL answered HTTP %s",
            resp.status_code,
            extra={"event": "platform_http_error", "url": url[:200], "body": body[:300].decode("utf-8", "replace")},
        )
        raise FetchError(f"{url[:200]} answered HTTP {resp.status_code} (its answer is in the tool's log)")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FetchError(f"{url[:200]} did not answer JSON") from exc
    if has_nul(data):
        raise FetchError(f"{url[:200]} answered JSON holding a NUL character")
    return data
