"""Per-client-address rate limits for the anonymous LTI entry points (/lti/login/, /lti/register/).

Fixed windows counted in the shared cache (Redis in production), so every web process sees the same counts. A
limited request gets 429 with Retry-After (the seconds left in its window) and does nothing else.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("lti_tool.ratelimit")

CACHE_PREFIX = "ratelimit:"
# One IPv6 client usually holds a whole /64: counting each address apart would make the limit meaningless.
IPV6_PREFIX_BITS = 64


def parse_rate(rate: str) -> tuple[int, int]:
    """"N/S" -> (N requests, S seconds) (settings.py has checked the form at startup)."""
    count, _, seconds = rate.partition("/")
    return int(count), int(seconds)


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front, the X-Forwarded-For entry the
    outermost trusted proxy appended (entries left of it are whatever the client wrote). IPv6 counts per /64."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "")[:2000].split(",")]
        if len(hops) >= proxies and hops[-proxies]:
            address = hops[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX_BITS), strict=False))
    return str(ip)


def seconds_until_allowed(scope: str, address: str, rate: str) -> int:
    """Count one request of `address` to `scope`; 0 when it is within `rate`, else the seconds until its window ends."""
    limit, window = parse_rate(rate)
    now = time.time()
    start = int(now // window) * window
    key = f"{CACHE_PREFIX}{scope}:{address}:{start}"
    cache.add(key, 0, window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr
        cache.set(key, 1, window + 5)
        count = 1
    if count <= limit:
        return 0
    return max(1, math.ceil(start + window - now))


def rate_limited(scope: str, setting: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """View decorator: at most settings.<setting> ("N/S") requests per client address, else 429 with Retry-After."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            address = client_address(request)
            wait = seconds_until_allowed(scope, address, getattr(settings, setting))
            if not wait:
                return view(request, *args, **kwargs)
            logger.warning(
                "Rate limit reached",
                extra={"event": "rate_limited", "scope": scope, "client": address, "retry_after_s": wait},
            )
            response = HttpResponse(
                f"Too many requests from your network. Please try again in {wait} seconds.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait)
            response.lti_frame_anywhere = True  # type: ignore[attr-defined]  # an LMS iframe may show this page
            return response

        return wrapped

    return decorator
