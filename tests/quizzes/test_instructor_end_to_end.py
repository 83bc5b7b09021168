"""As an instructor would meet it, through the development LMS over HTTP: a student times out, the instructor reopens
the question, the student answers and the LMS gradebook shows the new total; an override with a comment reaches the
gradebook (AGS `comment`) and the student sees it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lti_tool.gradebook import services as gradebook
from quizzes.models import QuestionState
from tests.lti_support import choice_options, post_form

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = "why-skip-connections"
FIRST_TEXT = "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks."
SECOND = "skip-block-output-shape"
COMMENT = "Accepted: your reasoning about the shape was right, the option was mislabelled."


def _link(page, part: str) -> str:
    """The absolute URL of the first link on the page whose href contains `part`."""
    match = re.search(rf'href="([^"]*{re.escape(part)}[^"]*)"', page.text)
    assert match, f"no link containing {part!r} in {page.url}"
    return page.url.split("/p/")[0] + match.group(1) if match.group(1).startswith("/") else match.group(1)


def _gradebook(dev_lms) -> dict:
    gradebook.deliver_due_now(include_not_due=True)
    return dev_lms.result(user="student1")


@pytest.mark.parametrize("style", ["canvas", "moodle"])
def test_a_timed_out_question_is_reopened_and_an_override_reaches_the_gradebook_with_its_comment(dev_lms, style):
    dev_lms.register_tool(style=style)
    learner = dev_lms.launch(user="student1")
    session, player = learner.session, learner.response

    # The student opens the first question and their connection drops until its time is up.
    question = post_form(session, post_form(session, player, "/start/"), "/open/")
    QuestionState.objects.filter(slug=FIRST).update(deadline=timezone.now() - timedelta(seconds=30))
    late = post_form(session, question, "/answer/", choice=choice_options(question.text)[FIRST_TEXT][1])
    assert late.status_code == 409 and "Time is up" in late.text
    post_form(session, session.get(player.url + "finish/", timeout=30), "/finish/")  # the confirmation step
    result = _gradebook(dev_lms)
    assert result["grading_progress"] == "FullyGraded" and result["score_given"] == 0

    # The instructor finds the student and reopens the question with its full time.
    teacher = dev_lms.launch(user="instructor1")
    student_page = teacher.session.get(_link(teacher.response, "/instructor/students/"), timeout=30)
    assert student_page.status_code == 200 and "Reopen the attempt" in student_page.text
    reopen_page = teacher.session.get(_link(student_page, f"/q/{FIRST}/reopen/"), timeout=30)
    assert reopen_page.status_code == 200
    reopened = post_form(teacher.session, reopen_page, "/reopen/", minutes="", note="Connection dropped")
    assert reopened.status_code == 200 and reopened.url.split("#")[0].endswith(student_page.url.split("/p/")[1])

    # The student answers the reopened question: it was the only one open, so the attempt is handed in again.
    question = session.get(question.url, timeout=30)
    assert "remaining" in question.text
    answered = post_form(session, question, "/answer/", choice=choice_options(question.text)[FIRST_TEXT][1])
    assert answered.status_code == 200 and '<span class="ok">correct</span>' in answered.text
    result = _gradebook(dev_lms)
    assert result["grading_progress"] == "FullyGraded"
    assert result["score_given"] == pytest.approx(100 * 1 / 13, rel=1e-3)  # 1 of 13 points on a 100-point column
    if style == "canvas":
        assert result["attempt"] == 2  # the reopened attempt's hand-in is a new submission

    # The instructor overrides the second question with a comment; the LMS gets the new total and the comment.
    override_page = teacher.session.get(_link(student_page, f"/q/{SECOND}/override/"), timeout=30)
    saved = post_form(teacher.session, override_page, "/override/", points="1", comment=COMMENT)
    assert saved.status_code == 200
    result = _gradebook(dev_lms)
    assert result["score_given"] == pytest.approx(100 * 2 / 13, rel=1e-3)
    assert COMMENT in result["comment"] and "2 of 13 points" in result["comment"]
    if style == "canvas":
        assert result["attempt"] == 2  # a regrade of the same hand-in, not a new submission

    summary = session.get(player.url, timeout=30)  # a finished attempt lands on the summary
    assert COMMENT in summary.text and "set by your instructor" in summary.text
    audit = teacher.session.get(_link(teacher.session.get(teacher.response.url, timeout=30), "/audit/"), timeout=30)
    assert "Question reopened" in audit.text and "Points overridden" in audit.text
    assert "Connection dropped" in audit.text
