"""The instructor's override and reopen pages in a real browser at 1280x800, inside the development LMS's course
iframe: a student's question times out, the instructor reopens it and overrides another with a comment, the student
answers the reopened question and reads the comment; axe-core checks every page on the way."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from quizzes.models import AuditEntry, QuestionState
from tests.browser.support import (
    SEED_QUESTIONS,
    answer,
    assert_accessible,
    begin_question,
    has_horizontal_scroll,
    launch_in_frame,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
COMMENT = "Your working was right; the option's wording was ambiguous, so full marks."


def test_an_instructor_reopens_a_timed_out_question_and_overrides_another_with_a_comment(
    page: Page, other_page: Page, dev_lms
) -> None:
    dev_lms.register_tool(style="canvas")
    page.set_viewport_size(LAPTOP)
    other_page.set_viewport_size(LAPTOP)
    first_title, first_correct = SEED_QUESTIONS[0][:2]
    second_title = SEED_QUESTIONS[1][0]

    # The student opens the first question; their connection drops until its time is up.
    student = launch_in_frame(other_page, "student1")
    start_set(student)
    begin_question(student, first_title)
    QuestionState.objects.filter(slug="why-skip-connections").update(deadline=timezone.now() - timedelta(minutes=1))

    # The instructor goes from the results to the student, then to the question's reopen page.
    instructor = launch_in_frame(page, "instructor1")
    instructor.get_by_role("link", name="Ada Lovelace").first.click()
    expect(instructor.get_by_role("heading", level=1, name="Ada Lovelace")).to_be_visible()
    instructor.get_by_role("link", name=f"Reopen {first_title}, attempt 1").click()
    expect(instructor.get_by_role("heading", level=1, name=f"Reopen: {first_title}")).to_be_visible()
    expect(instructor.get_by_text("Time ran out", exact=True)).to_be_visible()
    frame = tool_frame(page)
    assert_accessible(frame, "the reopen page")
    assert not has_horizontal_scroll(frame)
    instructor.get_by_label("Fresh time in minutes (empty: the full time limit again)").fill("5")
    instructor.get_by_label("Note (optional, kept in the audit trail)").fill("Connection dropped")
    instructor.get_by_role("button", name="Reopen the question").click()
    expect(instructor.get_by_role("heading", level=1, name="Ada Lovelace")).to_be_visible()

    # Override the second question: a missing comment is refused on the page, then the points are saved.
    instructor.get_by_role("link", name=f"Override points for {second_title}, attempt 1").click()
    expect(instructor.get_by_role("heading", level=1, name=f"Override points: {second_title}")).to_be_visible()
    assert_accessible(frame, "the override page")
    assert not has_horizontal_scroll(frame)
    instructor.get_by_label("Points", exact=True).fill("1")
    instructor.get_by_role("button", name="Save the points").click()
    # The browser itself refuses the empty required comment; nothing was sent.
    expect(instructor.get_by_role("heading", level=1, name=f"Override points: {second_title}")).to_be_visible()
    assert QuestionState.objects.get(slug="skip-block-output-shape").override_points is None
    instructor.get_by_label(re.compile("^Comment for the student")).fill(COMMENT)
    instructor.get_by_role("button", name="Save the points").click()
    expect(instructor.get_by_text("Points set by an instructor:")).to_be_visible()
    expect(instructor.get_by_text(COMMENT)).to_be_visible()
    assert_accessible(frame, "the student's page with its actions")

    # The student, back on the reopened question, has fresh time and answers it.
    student_frame = tool_frame(other_page)
    student_frame.goto(student_frame.url)
    expect(student.get_by_text(re.compile(r"\d:\d\d remaining"))).to_be_visible()
    reopened = AuditEntry.objects.get(action=AuditEntry.Action.REOPEN_QUESTION)
    deadline = QuestionState.objects.get(slug="why-skip-connections").deadline
    assert deadline == reopened.created_at + timedelta(minutes=5)  # five fresh minutes from the reopen
    answer(student, first_correct)
    expect(student.get_by_text("Correct", exact=True)).to_be_visible()
    student.get_by_role("link", name=re.compile("Next")).first.click()
    expect(student.get_by_role("heading", level=1, name=second_title)).to_be_visible()
    expect(student.get_by_role("note")).to_contain_text(COMMENT)
    assert_accessible(student_frame, "a question with the instructor's comment")

    # Every action is in the audit trail.
    instructor.get_by_role("link", name="Results").click()
    instructor.get_by_role("link", name="Audit trail").click()
    trail = instructor.get_by_role("table", name="Instructor actions, newest first")
    expect(trail.get_by_role("row")).to_have_count(3)  # a header and two actions
    expect(trail).to_contain_text("Question reopened")
    expect(trail).to_contain_text("Points overridden")
    expect(trail).to_contain_text("Connection dropped")
    assert_accessible(frame, "the audit trail")
