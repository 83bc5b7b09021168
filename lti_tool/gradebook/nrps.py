"""Names and Role Provisioning Services (NRPS): the course roster, so instructors see who has not started.

Pages are followed through `Link: <...>; rel="next"` with the URL exactly as the platform wrote it (pylti1p3
lower-cases the header, which breaks Moodle's `/CourseSection/` URLs).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lti_tool.gradebook import ags
from lti_tool.models import Context, LtiUser, Membership
from lti_tool.roles import course_roles, role_list

MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_MEMBERS = 20_000  # bounded input: no course we serve comes near it


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
    for body in ags.get_pages(
        registration, context.memberships_url, (ags.SCOPE_NRPS,), MEDIA_MEMBERSHIPS, "reading the course roster"
    ):
        page = body.get("members", []) if isinstance(body, dict) else []
        members.extend(member for member in page if isinstance(member, dict))
        if len(members) > MAX_MEMBERS:
            raise ags.ServiceError("The course roster is larger than the tool accepts.", retryable=False)
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
