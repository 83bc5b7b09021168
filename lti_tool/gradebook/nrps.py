"""Names and Role Provisioning Services (NRPS): the course roster, so instructors see who has not started.

Pages are followed through `Link: <...>; rel="next"` with the URL exactly as the platform wrote it (pylti1p3
lower-cases the header, which breaks Moodle's `/CourseSection/` URLs).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.core.cache import cache
from django.db import transaction

from lti_tool.gradebook import ags
from lti_tool.models import Context, LtiUser, Membership
from lti_tool.roles import course_roles, role_list

logger = logging.getLogger(__name__)

MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_MEMBERS = 20_000  # bounded input: no course we serve comes near it
# Canvas pages 10 members unless asked (and gives at most 100): ask for large pages. Moodle answers the whole roster
# unless asked for pages, so its URL is left alone.
PAGE_SIZE = 1000
# Enough pages for the largest roster accepted even at Canvas's default of 10 members a page.
MAX_PAGES = MAX_MEMBERS // 10
# How long the instructor's page says a roster was cut short, unless a later sync reads it whole.
TRUNCATED_NOTICE_S = 7 * 24 * 3600


def roster_url(context: Context) -> str:
    """The first roster page to ask for: the service URL with a large `limit`, unless it names one or is Moodle's."""
    url = context.memberships_url
    query = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}
    if "limit" in query or context.deployment.registration.product_family.strip().lower() == "moodle":
        return url
    return ags.with_query(url, {"limit": str(PAGE_SIZE)})


def _truncated_key(context_pk: int) -> str:
    return f"lti:roster-truncated:{context_pk}"


def truncated_notice(context: Context) -> str:
    """What the instructor is told when the last roster sync could not read every page, or ""."""
    return cache.get(_truncated_key(context.pk)) or ""


def fetch_members(context: Context) -> list[dict[str, Any]]:
    """Every member on every page of the context's membership service (raises ags.ServiceError)."""
    if not context.memberships_url:
        raise ags.ServiceError(
            "The LMS offers no roster service (NRPS) for this course: the tool cannot list students who have not "
            "launched it yet. Ask your LMS administrator to enable Names and Role Provisioning for the tool.",
            retryable=False,
        )
    registration = context.deployment.registration
    members: list[dict[str, Any]] = []
    bodies, truncated = ags.fetch_pages(
        registration,
        roster_url(context),
        (ags.SCOPE_NRPS,),
        MEDIA_MEMBERSHIPS,
        "reading the course roster",
        max_pages=MAX_PAGES,
    )
    for body in bodies:
        page = body.get("members", []) if isinstance(body, dict) else []
        members.extend(member for member in page if isinstance(member, dict))
        if len(members) > MAX_MEMBERS:
            raise ags.ServiceError("The course roster is larger than the tool accepts.", retryable=False)
    if truncated:
        # Never cut a roster silently: the members read are stored, and the instructor's page says what is missing.
        logger.warning("roster truncated", extra={"context": context.pk, "pages": len(bodies)})
        notice = (
            f"The roster is incomplete: the LMS listed it over more than {len(bodies)} pages and the tool read only "
            f"the first {len(members)} members. Students after them do not show as \u201cNot started\u201d."
        )
        cache.set(_truncated_key(context.pk), notice, TRUNCATED_NOTICE_S)
    else:
        cache.delete(_truncated_key(context.pk))
    return members


def sync_roster(context: Context) -> int:
    """Store the roster as Membership rows (new ones with from_roster=True) and fill in missing names; returns the
    number of active members."""
    members = fetch_members(context)
    registration = context.deployment.registration
    synced = 0
    with transaction.atomic():
        for member in members:
            sub = str(member.get("user_id") or "")[:255]
            if not sub or str(member.get("status", "Active")) != "Active":
                continue
            roles = role_list(member.get("roles"))
            standing = course_roles(roles)
            user, _ = LtiUser.objects.get_or_create(registration=registration, sub=sub)
            changed = []
            for field in ("name", "given_name", "family_name", "email"):
                value = str(member.get(field) or "")[:255]
                if value and getattr(user, field) != value:
                    setattr(user, field, value)
                    changed.append(field)
            if changed:
                user.save(update_fields=[*changed, "updated_at"])
            membership, created = Membership.objects.get_or_create(
                context=context,
                lti_user=user,
                defaults={
                    "roles": roles,
                    "is_staff": standing.is_staff,
                    "is_learner": standing.is_learner,
                    "from_roster": True,
                },
            )
            if not created and membership.from_roster:
                # A row the roster made is kept up to date by it; one a launch made is the launch's.
                membership.roles = roles
                membership.is_staff = standing.is_staff
                membership.is_learner = standing.is_learner
                membership.save(update_fields=["roles", "is_staff", "is_learner", "updated_at"])
            synced += 1
    return synced
