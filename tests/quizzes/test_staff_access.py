"""Instructor pages show only the launched course's students (issue 11). With one Canvas developer key for a whole
institution every course shares one registration: an instructor of course 1 walking user ids must learn nothing
about course 2's students and change nothing for them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from lti_tool.models import LtiUser, Membership, ResourceLink
from quizzes.models import Accommodation, Attempt
from tests.lti_support import parse_forms

pytestmark = pytest.mark.django_db(transaction=True)


def _csrf(page_text: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_text).group(1)


def _start(dev_lms, user: str, course: str) -> None:
    """`user` launches link1 of `course` and starts an attempt there (so the tool has history for them)."""
    learner = dev_lms.launch(user=user, course=course)
    form = next(f for f in parse_forms(learner.response.text, learner.response.url) if "/start/" in f.action)
    assert learner.session.post(form.action, data=form.fields, timeout=30).status_code == 200


def test_an_instructor_walking_user_ids_finds_only_the_students_of_the_launched_course(dev_lms):
    dev_lms.register_tool(style="canvas")  # one registration (developer key) for both courses
    for user in ("student3", "student4"):
        dev_lms.unenroll(user, course="course1")  # course 2 only, also in the LMS's roster
        _start(dev_lms, user, "course2")
    _start(dev_lms, "student1", "course1")
    dev_lms.launch(user="student2", course="course1")  # launched, no attempt yet
    teacher = dev_lms.launch(user="instructor1", course="course1")
    session, dashboard = teacher.session, teacher.response
    assert dashboard.status_code == 200 and "/instructor/" in dashboard.url
    rl_pk = int(urlsplit(dashboard.url).path.split("/")[2])
    course1 = ResourceLink.objects.get(pk=rl_pk).context
    members = set(Membership.objects.filter(context=course1).values_list("lti_user_id", flat=True))
    outsiders = set(LtiUser.objects.exclude(pk__in=members).values_list("pk", flat=True))
    assert len(outsiders) == 2 and Attempt.objects.filter(lti_user_id__in=outsiders).count() == 2
    student1 = LtiUser.objects.get(sub=dev_lms.sub("student1"))
    token = _csrf(session.get(dashboard.url + f"students/{student1.pk}/", timeout=30).text)  # its accommodation form

    # Every id there is, and some there are not on both sides (ids keep counting across the suite's flushes).
    ids = LtiUser.objects.values_list("pk", flat=True)
    for pk in range(max(1, min(ids) - 2), max(ids) + 3):
        pages = {
            "student": session.get(dashboard.url + f"students/{pk}/", timeout=30),
            "review": session.get(dev_lms.base_url + f"/review/{rl_pk}/{pk}/", timeout=30),
            "accommodation": session.post(
                dashboard.url + f"students/{pk}/accommodation/",
                data={"csrfmiddlewaretoken": token, "time_multiplier": "2", "extra_attempts": "1"},
                timeout=30,
                allow_redirects=False,
            ),
        }
        if pk in members:
            assert [p.status_code for p in pages.values()] == [200, 200, 302], pk
            continue
        for name, page in pages.items():
            assert page.status_code == 404, (name, pk, page.status_code)
            for outsider in LtiUser.objects.filter(pk__in=outsiders):
                assert outsider.email not in page.text and outsider.display_name not in page.text
    assert not Accommodation.objects.filter(lti_user_id__in=outsiders).exists()
    assert Accommodation.objects.filter(lti_user_id__in=members).count() == len(members)


def test_a_submission_review_opens_only_the_student_it_names(dev_lms):
    """The platform's review launch vouches for its for_user (who may never have launched): that student opens,
    another registration user outside the course still does not."""
    dev_lms.register_tool(style="moodle")
    dev_lms.unenroll("student4", course="course1")
    _start(dev_lms, "student4", "course2")
    review = dev_lms.launch(user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student5")
    assert review.response.status_code == 200 and "/review/" in review.response.url
    assert "No attempts yet." in review.response.text
    rl_pk = urlsplit(review.response.url).path.split("/")[2]
    outsider = LtiUser.objects.get(sub=dev_lms.sub("student4"))
    for path in (f"/review/{rl_pk}/{outsider.pk}/", f"/p/{rl_pk}/instructor/students/{outsider.pk}/"):
        page = review.session.get(dev_lms.base_url + path, timeout=30)
        assert page.status_code == 404 and outsider.email not in page.text


def test_a_submission_review_keeps_its_student_while_the_launch_lasts_even_when_the_cache_is_emptied(dev_lms):
    """The for_user a review launch vouches for is kept with the launch in the session, not in a cache entry that a
    Redis restart or eviction (or 24 hours) would lose while the instructor still has the page open."""
    from django.core.cache import cache

    dev_lms.register_tool(style="moodle")
    review = dev_lms.launch(user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student5")
    assert review.response.status_code == 200 and "/review/" in review.response.url
    cache.clear()

    page = review.session.get(review.response.url, timeout=30)
    assert page.status_code == 200 and "No attempts yet." in page.text
