"""Seed data of the development LMS: people, courses, enrollments, resource links, the installed tool."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction

from lti_tool.devlms.models import Course, Enrollment, LineItem, Person, ResourceLink, Tool
from lti_tool.devlms.services.base import INSTRUCTORS, STUDENTS, PlatformError


def ensure_seed() -> None:
    """Create the default people, courses and links if missing (idempotent; cheap when already there)."""
    if Course.objects.filter(slug="course1").exists():
        return
    try:
        with transaction.atomic():
            people = [ensure_person(username) for username, _, _ in STUDENTS + INSTRUCTORS]
            for slug, title, label in [("course1", "Deep Learning 101", "DL101"), ("course2", "Vision 201", "CV201")]:
                course = Course.objects.create(slug=slug, title=title, label=label)
                for person in people:
                    Enrollment.objects.create(course=course, person=person, is_instructor=person.is_instructor)
                add_resource_link(
                    course,
                    slug="link1",
                    title="ResNet challenges",
                    line_item={"label": "ResNet challenges", "scoreMaximum": 100.0, "resourceId": "resnet"},
                )
                add_resource_link(course, slug="link2", title="ResNet challenges (no gradebook column)")
    except IntegrityError:
        pass  # another request seeded concurrently


def ensure_person(username: str) -> Person:
    """The person called `username`, created on demand (names starting with "instructor" are instructors)."""
    person = Person.objects.filter(username=username).first()
    if person:
        return person
    known = {u: (g, f) for u, g, f in STUDENTS + INSTRUCTORS}
    given, family = known.get(username, (username.capitalize(), "Example"))
    try:
        with transaction.atomic():
            return Person.objects.create(
                username=username,
                sub=secrets.token_hex(12),
                given_name=given,
                family_name=family,
                email=f"{username}@devlms.example.edu",
                is_instructor=username.startswith("instructor"),
            )
    except IntegrityError:
        return Person.objects.get(username=username)  # created concurrently by another request


def get_course(slug: str) -> Course:
    ensure_seed()
    try:
        return Course.objects.get(slug=slug)
    except Course.DoesNotExist:
        raise PlatformError(404, f"No course {slug!r}.")


def get_link(course: Course, slug: str) -> ResourceLink:
    try:
        return ResourceLink.objects.select_related("line_item").get(course=course, slug=slug)
    except ResourceLink.DoesNotExist:
        raise PlatformError(404, f"No resource link {slug!r} in {course.slug}.")


def ensure_enrollment(course: Course, person: Person) -> Enrollment:
    """Enroll `person` in `course` (with their default role) unless already enrolled."""
    enrollment, _ = Enrollment.objects.get_or_create(
        course=course, person=person, defaults={"is_instructor": person.is_instructor}
    )
    return enrollment


def add_resource_link(
    course: Course,
    *,
    slug: str | None = None,
    title: str,
    custom: dict[str, str] | None = None,
    line_item: dict[str, Any] | None = None,
    tool: Tool | None = None,
) -> ResourceLink:
    """Place a link in `course`, optionally with a coupled gradebook column (AGS lineItem fields)."""
    with transaction.atomic():
        if slug is None:
            n = course.resource_links.count() + 1
            while course.resource_links.filter(slug=f"link{n}").exists():
                n += 1
            slug = f"link{n}"
        link = ResourceLink.objects.create(
            course=course, slug=slug, link_id=secrets.token_hex(10), title=title[:200], custom=custom or {}
        )
        if line_item is not None:
            item = LineItem.objects.create(
                course=course,
                resource_link=link,
                tool=tool,
                label=str(line_item.get("label") or title)[:200],
                score_maximum=float(line_item.get("scoreMaximum", 100.0)),
                resource_id=str(line_item.get("resourceId", ""))[:200],
                tag=str(line_item.get("tag", ""))[:200],
            )
            link.line_item = item
            link.save(update_fields=["line_item"])
        return link


def current_tool() -> Tool | None:
    """The tool launches go to: the newest active, installed one."""
    return Tool.objects.active().exclude(deployment_id="").order_by("-created_at", "-pk").first()
