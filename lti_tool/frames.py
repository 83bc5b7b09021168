"""Which LMS origins may frame the tool: the CSP `frame-ancestors` sources (used by lti_tool.middleware).

Sources: each active registration's issuer and OIDC login origins, `https://*.instructure.com` for Canvas cloud,
`LTI_FRAME_ANCESTORS_EXTRA`, and origins learned from launches. Canvas cloud schools may sit on their own domain
(`https://canvas.university.edu`), which is none of those: the launch's signed `launch_presentation.return_url` (and a
deep-linking `deep_link_return_url`) is built by Canvas from the address the user reached it at, so its origin is
learned (`FrameOrigin`). Only claims of an id_token that verified teach an origin; the `Origin` header of the launch
POST never does (a student can send their own valid id_token with any header they like). A registration keeps at most
MAX_LEARNED_ORIGINS (the least recently seen go first), only https (http on loopback hosts, for development).

The list is cached for FRAME_ORIGINS_CACHE_S; saving or deleting a Registration or a FrameOrigin forgets it after
commit (signals, connected in LtiToolConfig.ready). A `QuerySet.update()` sends no signal: the cache lifetime bounds
how long such a change goes unseen.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from lti_tool.claims import C_DL_SETTINGS, C_LAUNCH_PRESENTATION
from lti_tool.dynreg import is_canvas_cloud
from lti_tool.models import FrameOrigin, Registration

FRAME_ORIGINS_CACHE_KEY = "lti:frame-ancestors"
FRAME_ORIGINS_CACHE_S = 60
CANVAS_CLOUD_FRAME_SOURCE = "https://*.instructure.com"
MAX_LEARNED_ORIGINS = 20
MAX_ORIGIN_CHARS = 255
SEEN_REFRESH = timedelta(hours=1)


def origin_of(url: Any) -> str:
    """scheme://host[:port] of an absolute http(s) URL, else ""."""
    if not isinstance(url, str) or len(url) > 2000:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def learnable_origin(url: Any) -> str:
    """The origin a CSP source may name for `url`: https (http only on loopback), a plain host, no credentials."""
    try:
        parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2000 else None
        port = parts.port if parts else None
    except ValueError:
        return ""
    if parts is None or parts.username is not None or parts.password is not None:
        return ""
    host = (parts.hostname or "").lower()
    if not host or any(c in host for c in "*;,' \"\\") or not host.isascii():
        return ""
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        return ""
    netloc = f"[{host}]" if ":" in host else host
    origin = f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")
    return origin if len(origin) <= MAX_ORIGIN_CHARS else ""


def _claimed_origins(claims: dict[str, Any]) -> set[str]:
    """Origins of the platform URLs inside signed claims that point back at the LMS page the user is on."""
    urls = []
    presentation = claims.get(C_LAUNCH_PRESENTATION)
    if isinstance(presentation, dict):
        urls.append(presentation.get("return_url"))
    dl_settings = claims.get(C_DL_SETTINGS)
    if isinstance(dl_settings, dict):
        urls.append(dl_settings.get("deep_link_return_url"))
    return {origin for origin in map(learnable_origin, urls) if origin}


def _registration_sources(registration: Registration) -> set[str]:
    found = {origin_of(registration.issuer), origin_of(registration.auth_login_url)} - {""}
    if is_canvas_cloud(registration.issuer):
        found.add(CANVAS_CLOUD_FRAME_SOURCE)  # the school's *.instructure.com domain frames the tool
    return found


def _covered(origin: str, sources: set[str]) -> bool:
    return origin in sources or (
        CANVAS_CLOUD_FRAME_SOURCE in sources and origin.startswith("https://") and origin.endswith(".instructure.com")
    )


def learn_frame_origins(registration: Registration, claims: dict[str, Any]) -> list[str]:
    """Remember the LMS origins a verified launch's claims name (call only with claims of a validated id_token).
    Returns the origins it added."""
    sources = _registration_sources(registration) | set(getattr(settings, "LTI_FRAME_ANCESTORS_EXTRA", []))
    origins = {o for o in _claimed_origins(claims) if not _covered(o, sources)}
    if not origins:
        return []
    now = timezone.now()
    known = dict(
        FrameOrigin.objects.filter(registration=registration, origin__in=origins).values_list("origin", "last_seen_at")
    )
    stale = [o for o, seen in known.items() if seen < now - SEEN_REFRESH]
    if stale:  # no signal: the set of origins does not change
        FrameOrigin.objects.filter(registration=registration, origin__in=stale).update(last_seen_at=now)
    added = []
    for origin in sorted(origins - set(known)):
        try:
            with transaction.atomic():
                FrameOrigin.objects.create(registration=registration, origin=origin, last_seen_at=now)
            added.append(origin)
        except IntegrityError:
            pass  # learned by a concurrent launch
    if added:
        keep = FrameOrigin.objects.filter(registration=registration).order_by("-last_seen_at", "-pk")
        surplus = list(keep.values_list("pk", flat=True)[MAX_LEARNED_ORIGINS:])
        if surplus:
            FrameOrigin.objects.filter(pk__in=surplus).delete()
    return added


def frame_ancestor_sources() -> list[str]:
    """Origins allowed to frame tool pages (cached)."""
    sources = cache.get(FRAME_ORIGINS_CACHE_KEY)
    if sources is not None:
        return sources
    found: set[str] = set()
    active = Registration.objects.active()
    for registration in active.only("issuer", "auth_login_url"):
        found |= _registration_sources(registration)
    found.update(FrameOrigin.objects.filter(registration__in=active).values_list("origin", flat=True))
    found.update(getattr(settings, "LTI_FRAME_ANCESTORS_EXTRA", []))
    sources = sorted(found)
    cache.set(FRAME_ORIGINS_CACHE_KEY, sources, FRAME_ORIGINS_CACHE_S)
    return sources


def forget_frame_ancestors() -> None:
    cache.delete(FRAME_ORIGINS_CACHE_KEY)


@receiver(post_save, sender=Registration, dispatch_uid="frames-registration-saved")
@receiver(post_delete, sender=Registration, dispatch_uid="frames-registration-deleted")
@receiver(post_save, sender=FrameOrigin, dispatch_uid="frames-origin-saved")
@receiver(post_delete, sender=FrameOrigin, dispatch_uid="frames-origin-deleted")
def _sources_changed(**kwargs: Any) -> None:
    forget_frame_ancestors()
    # Again after commit: a request in between may have cached the list without the change.
    transaction.on_commit(forget_frame_ancestors)
