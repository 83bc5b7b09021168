"""Pages cost a fixed number of database queries, whatever the number of challenges or students (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quizzes import content
from tests.quizzes.factories import establish_launch, instructor_for, student_for
from tests.quizzes.test_views import _open, _started, url

pytestmark = pytest.mark.django_db


def _queries(client: Client, page_url: str) -> int:
    assert client.get(page_url).status_code == 200  # warm: sessions, content caches
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(page_url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("page", ["player", "question"])
def test_student_pages_do_not_grow_with_the_number_of_challenges(page):
    every = [c["slug"] for c in content.current_set().challenges]
    counts = []
    for slugs in (every[:2], every):
        _, rl, _, client, attempt = _started(slugs=slugs)
        _open(client, rl, attempt, slug=slugs[0])
        page_url = url("question", rl, slug=slugs[0]) if page == "question" else url("player", rl)
        counts.append(_queries(client, page_url))
    assert counts[0] == counts[1], counts


def test_the_instructor_dashboard_does_not_grow_with_the_number_of_students_at_work():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    one = _queries(teacher, url("dashboard", rl))
    for _ in range(3):
        student = Client()
        establish_launch(student, rl, student_for(rl))
        student.post(url("start", rl))
        student_attempt = placement.attempts.order_by("-pk").first()
        _open(student, rl, student_attempt)
    assert _queries(teacher, url("dashboard", rl)) == one
