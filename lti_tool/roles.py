"""What a user may do in one course, from the LTI roles of a launch or an NRPS roster entry.

Only context (membership) roles count. Canvas adds the user's institution-wide roles to every launch
(`…/lis/v2/institution/person#Instructor` for anyone who teaches anywhere in the school, `…#Administrator` for an
account admin) and Moodle adds `institution/person#Administrator` and `system/person#Administrator` for site
admins: a student of this course who teaches another one must still be a student here, so institution and system
roles never grant anything in a course.

Accepted spellings of a context role (LTI 1.3 §A.2.3): the full URI `…/lis/v2/membership#Instructor`, a sub-role
`…/lis/v2/membership/Instructor#TeachingAssistant` (it counts as its principal role, here Instructor), the short
form `Instructor` (deprecated, still sent in Moodle's NRPS), and the LTI 1.1 URN `urn:lti:role:ims/lis/Instructor`
(some platforms still send it). Canvas's old map wrote `membership/instructor#…`: role names compare without case.

What each role may do here:
- Instructor (TeachingAssistant is one of its sub-roles) and Administrator (of the course): staff — the instructor
  dashboard, everyone's results, settings, deep linking.
- Learner (any sub-role, e.g. NonCreditLearner; Canvas's Test Student): a student — plays, is graded.
- ContentDeveloper (Canvas's Designer): may add and configure the activity through deep linking, sees no one's
  results, and never starts a graded attempt (the player shows the activity only).
- Mentor (Canvas's Observer) and anyone else: sees the player, never starts a graded attempt, sees no one's
  results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LIS_V2 = "http://purl.imsglobal.org/vocab/lis/v2/"
CONTEXT_PREFIX = LIS_V2 + "membership"
LTI11_CONTEXT_PREFIX = "urn:lti:role:ims/lis/"
MAX_ROLES = 50
MAX_ROLE_CHARS = 255

INSTRUCTOR = "Instructor"
ADMINISTRATOR = "Administrator"
TEACHING_ASSISTANT = "TeachingAssistant"
LEARNER = "Learner"
CONTENT_DEVELOPER = "ContentDeveloper"
MENTOR = "Mentor"
# The LIS v2 context roles (lower case -> canonical), plus TeachingAssistant, which some platforms send as a
# principal role although LIS makes it a sub-role of Instructor.
CONTEXT_ROLES = {
    name.lower(): name
    for name in (
        ADMINISTRATOR,
        CONTENT_DEVELOPER,
        INSTRUCTOR,
        LEARNER,
        "Manager",
        "Member",
        MENTOR,
        "Officer",
        TEACHING_ASSISTANT,
    )
}
STAFF = frozenset({INSTRUCTOR, ADMINISTRATOR, TEACHING_ASSISTANT})


@dataclass(frozen=True)
class CourseRoles:
    """A user's standing in one course."""

    names: frozenset[str]

    @property
    def is_staff(self) -> bool:
        return bool(self.names & STAFF)

    @property
    def is_learner(self) -> bool:
        return LEARNER in self.names

    @property
    def may_configure(self) -> bool:
        """Add and configure the activity through deep linking (staff and designers)."""
        return self.is_staff or CONTENT_DEVELOPER in self.names


def context_role(role: object) -> str:
    """The principal context role a role string names ("" for institution, system and unknown roles)."""
    if not isinstance(role, str) or not role or len(role) > MAX_ROLE_CHARS:
        return ""
    if role.startswith(CONTEXT_PREFIX):
        rest = role[len(CONTEXT_PREFIX):]
        if rest.startswith("#"):  # membership#Instructor
            name = rest[1:]
        elif rest.startswith("/") and "#" in rest:  # membership/Instructor#TeachingAssistant: the principal
            name = rest[1:].split("#", 1)[0]
        else:
            return ""
    elif role.startswith(LTI11_CONTEXT_PREFIX):  # urn:lti:role:ims/lis/Instructor[/TeachingAssistant]
        name = role[len(LTI11_CONTEXT_PREFIX):].split("/", 1)[0]
    elif ":" in role or "/" in role or "#" in role:
        return ""  # institution, system, other vocabularies
    else:
        name = role  # the short form
    return CONTEXT_ROLES.get(name.lower(), "")


def course_roles(roles: Iterable[object]) -> CourseRoles:
    """The context roles among `roles` (at most MAX_ROLES of them are read)."""
    names = set()
    for index, role in enumerate(roles):
        if index >= MAX_ROLES:
            break
        name = context_role(role)
        if name:
            names.add(name)
    return CourseRoles(frozenset(names))


def role_list(value: object) -> list[str]:
    """The role strings of a claim or roster entry, bounded (what Membership.roles stores)."""
    if not isinstance(value, list):
        return []
    return [r for r in value if isinstance(r, str) and len(r) <= MAX_ROLE_CHARS][:MAX_ROLES]
