"""As a new user would meet it: launches through the development LMS over HTTP, then the player and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from lti_tool.gradebook import services as gradebook
from quizzes import content
from quizzes.models import Attempt, Placement, QuestionState
from tests.lti_support import choice_options, form_posting_to, post_form

pytestmark = pytest.mark.django_db(transaction=True)

FIRST_TEXT = "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks."


def test_a_learner_plays_and_the_instructor_sees_it(dev_lms):
    dev_lms.register_tool(style="canvas")
    learner = dev_lms.launch(user="student1")
    page = learner.response
    assert page.status_code == 200 and urlsplit(page.url).path.startswith("/p/")
    for challenge in content.current_set().challenges:  # all nine challenges are reachable
        assert challenge["title"].replace("'", "&#x27;") in page.text
    session = learner.session

    question = post_form(session, page, "/start/")
    assert "Start question" in question.text and FIRST_TEXT not in question.text
    question = post_form(session, question, "/open/")
    assert question.status_code == 200 and "Attempts: <strong>2</strong> left" in question.text
    # The option whose label reads "To allow gradients to flow directly..." is the correct one.
    letter, value = choice_options(question.text)[FIRST_TEXT]
    answered = post_form(session, question, "/answer/", choice=value)
    assert answered.status_code == 200
    assert f"Correct answer: <strong>{letter}</strong>" in answered.text
    assert '<span class="ok">correct</span>' in answered.text

    # Two wrong answers exhaust the second question.
    second = session.get(answered.url.replace("why-skip-connections", "skip-block-output-shape"), timeout=30)
    second = post_form(session, second, "/open/")
    options = choice_options(second.text)
    second = post_form(session, second, "/answer/", choice=options["(32, 32, 32, 64)"][1])
    assert "Attempts: <strong>1</strong> left" in second.text
    second = post_form(session, second, "/answer/", choice=options["(32, 62, 62, 64)"][1])
    assert "No attempts left" in second.text
    assert f"Correct answer: <strong>{options['(32, 64, 64, 64)'][0]}</strong>" in second.text

    # An answer after the deadline is refused.
    third = session.get(answered.url.replace("why-skip-connections", "channel-mismatch-block"), timeout=30)
    third = post_form(session, third, "/open/")
    QuestionState.objects.filter(slug="channel-mismatch-block").update(
        deadline=timezone.now() - timedelta(seconds=30)
    )
    late = post_form(session, third, "/answer/", choice=next(iter(choice_options(third.text).values()))[1])
    assert late.status_code == 409 and "Time is up for this question" in late.text

    # Mid-attempt the LMS hears of progress only: no grade, no submission (delivered here instead of by a worker).
    gradebook.deliver_due_now(include_not_due=True)
    result = dev_lms.result(user="student1")
    assert result is not None and result["grading_progress"] == "Pending" and result["score_given"] is None
    assert result["attempt"] == 0
    # Finishing sends the grade, as one submission dated when the student finished.
    finished = post_form(session, session.get(page.url + "finish/", timeout=30), "/finish/")  # the confirmation step
    assert finished.status_code == 200
    gradebook.deliver_due_now(include_not_due=True)
    result = dev_lms.result(user="student1")
    assert result["grading_progress"] == "FullyGraded" and result["attempt"] == 1
    finished_at = Attempt.objects.get().finished_at
    assert result["submitted_at"] == finished_at.replace(microsecond=finished_at.microsecond // 1000 * 1000)  # AGS: ms
    placement = Placement.objects.get()
    assert placement.points == 13  # 5 questions x 1 point + 4 code challenges x 2 points
    assert result["score_given"] == pytest.approx(100 * 1 / 13, rel=1e-3)  # 1 of 13, on link1's 100-point column

    # The instructor sees it all.
    teacher = dev_lms.launch(user="instructor1")
    board = teacher.response
    assert board.status_code == 200 and "/instructor/" in board.url
    assert "Results" in board.text and "No attempts left" in board.text and "Time ran out" in board.text
    assert "Correct" in board.text
    csv_body = teacher.session.get(board.url + "results.csv", timeout=30).text
    assert "why-skip-connections,correct" in csv_body


def test_deep_linking_configures_an_exam_that_students_then_launch(dev_lms):
    dev_lms.register_tool(style="canvas")
    teacher = dev_lms.launch(user="instructor1", resource_link=None, message_type="LtiDeepLinkingRequest")
    form_page = teacher.response
    assert form_page.status_code == 200 and "Add ResNet Challenges to your course" in form_page.text
    form = form_posting_to(form_page, "/deep-link/")
    assert form.fields["mode"] == "timed"  # the default: the whole set, timed
    data = {**form.fields, "mode": "exam", "exam_minutes": "10", "points": "50", "title": "ResNet exam"}
    data["challenges"] = ["why-skip-connections", "debug-skip-connection"]
    response = teacher.session.post(form.action, data=data, timeout=30)
    assert response.status_code == 200
    returned = dev_lms.deep_link_return(response, teacher.session)
    assert returned.response.status_code in (200, 302) and returned.links
    column = next(i for i in dev_lms.line_items() if i["resource_link"] == returned.links[0])
    assert column["score_maximum"] == 50 and column["label"] == "ResNet exam"

    learner = dev_lms.launch(user="student2", resource_link=returned.links[0])
    assert learner.response.status_code == 200
    placement = Placement.objects.get(title="ResNet exam")
    assert placement.mode_slug == "exam" and placement.rules["set_time_limit_s"] == 600
    assert placement.challenge_slugs == ["why-skip-connections", "debug-skip-connection"]
    assert "One timer for the whole set" in learner.response.text and "10:00" in learner.response.text
