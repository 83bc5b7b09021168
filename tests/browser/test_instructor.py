"""The instructor's side in a real browser: deep linking from the development LMS (configure the mode and the
challenges, the content item goes back to the LMS), the results table with a student in it, one student's history,
extra attempts that reach the student's open question, and axe-core checks of those pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from lti_tool.devlms.models import ResourceLink as LmsLink
from tests.browser.support import (
    SEED_QUESTIONS,
    activity_item,
    answer,
    assert_accessible,
    begin_question,
    devlms_home,
    launch_in_frame,
    next_question,
    shown_letter,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser


def test_instructor_adds_an_exam_by_deep_linking_and_students_get_it(page: Page, other_page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="moodle")
    devlms_home(page, "instructor1")
    course = page.get_by_role("article").filter(has=page.get_by_role("heading", name=re.compile("Deep Learning 101")))
    course.get_by_role("link", name="Add activity (deep linking)").click()

    tool = page.frame_locator("iframe.tool-frame")
    expect(tool.get_by_role("heading", level=1, name="Add ResNet Challenges to your course")).to_be_visible()
    assert_accessible(tool_frame(page), "the deep-linking form")
    # Defaults: the whole set, every challenge ticked.
    challenges = tool.get_by_role("group", name="Challenges").get_by_role("checkbox")
    expect(challenges).to_have_count(9)
    for box in challenges.all():
        expect(box).to_be_checked()

    tool.get_by_label("Title in the course").fill("ResNet exam")
    for title, *_ in SEED_QUESTIONS[2:]:
        tool.get_by_role("checkbox", name=re.compile(re.escape(title))).uncheck()
    for box in challenges.all()[5:]:  # the code challenges
        box.uncheck()
    tool.get_by_role("radio", name=re.compile("^Exam")).check()
    tool.get_by_label("Points in the gradebook").fill("20")
    tool.get_by_label(re.compile("Exam time limit in minutes")).fill("30")
    tool.get_by_role("button", name="Add to course").click()

    # The signed LtiDeepLinkingResponse came back to the LMS, which created the link and its gradebook column.
    expect(tool.get_by_role("heading", level=1, name="Activity added")).to_be_visible()
    expect(tool.get_by_role("listitem")).to_have_text(
        re.compile(r"ResNet exam in Deep Learning 101 \(gradebook column “ResNet exam”, 20(\.0)? points\)")
    )
    link = LmsLink.objects.get(title="ResNet exam")
    assert set(link.custom) == {"placement"}
    assert link.line_item.score_maximum == 20

    # A student launches the new activity and gets exactly what the instructor chose.
    student = launch_in_frame(other_page, "student1", link_title="ResNet exam")
    expect(student.get_by_role("heading", level=1, name="ResNet exam")).to_be_visible()
    expect(student.get_by_text("Exam", exact=True)).to_be_visible()
    rules = student.get_by_role("region", name="Before you start")
    expect(rules).to_contain_text("2 challenges.")
    expect(rules).to_contain_text("One timer for the whole set: 30:00")
    expect(rules).to_contain_text("No hints.")
    expect(student.get_by_role("region", name="Challenges").get_by_role("listitem")).to_have_text(
        [re.compile(re.escape(SEED_QUESTIONS[0][0])), re.compile(re.escape(SEED_QUESTIONS[1][0]))]
    )
    # In an exam the answer is recorded, but neither its correctness nor the key shows before the exam closes.
    student.get_by_role("button", name="Start").click()
    expect(student.get_by_role("heading", level=1, name=SEED_QUESTIONS[0][0])).to_be_visible()
    expect(student.get_by_role("button", name=re.compile("hint", re.IGNORECASE))).to_have_count(0)
    letter = shown_letter(student, SEED_QUESTIONS[0][1])
    answer(student, SEED_QUESTIONS[0][1])
    recorded = re.compile(rf"Attempt 1: {letter}\s+—\s+recorded")
    expect(student.get_by_role("region", name="Your answers")).to_contain_text(recorded)
    exam_page = tool_frame(other_page).content()
    assert "correct" not in exam_page.lower().replace("recorded", "")
    assert "Explanation" not in exam_page

    # And the instructor's launch of it shows its settings.
    devlms_home(page, "instructor1")
    activity_item(page, "ResNet exam").get_by_role("link", name="Open in the course page").click()
    settings = page.frame_locator("iframe.tool-frame").get_by_role("region", name="Settings of this placement")
    expect(settings).to_contain_text(re.compile(r"Mode\s*Exam"))
    expect(settings).to_contain_text("one timer for the whole set: 30:00")


def test_results_table_shows_the_student_and_extra_attempts_reach_an_open_question(
    page: Page, other_page: Page, dev_lms
) -> None:
    dev_lms.register_tool(style="canvas")

    # The student answers the first question and opens the second.
    student = launch_in_frame(other_page, "student1")
    start_set(student)
    begin_question(student, SEED_QUESTIONS[0][0])
    letter = shown_letter(student, SEED_QUESTIONS[0][1])
    answer(student, SEED_QUESTIONS[0][1])
    expect(student.get_by_text("Correct", exact=True)).to_be_visible()
    next_question(student)
    begin_question(student, SEED_QUESTIONS[1][0])
    expect(student.get_by_text("Attempts: 2 left")).to_be_visible()

    # The instructor's launch of the same activity lands on the dashboard.
    instructor = launch_in_frame(page, "instructor1")
    expect(instructor.get_by_text("Instructor view · 1 student")).to_be_visible()
    results = instructor.get_by_role("table", name=re.compile("per student and challenge"))
    row = results.get_by_role("row").filter(has=instructor.get_by_role("link", name="Ada Lovelace"))
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").nth(1)).to_contain_text("Correct")  # challenge 1
    expect(row.get_by_role("cell").nth(1)).to_contain_text("1 att.")
    expect(row).to_contain_text("in progress")
    stats = instructor.get_by_role("table", name=re.compile("Correct rate"))
    expect(stats.get_by_role("row").filter(has_text=SEED_QUESTIONS[0][0])).to_contain_text("100")
    assert_accessible(tool_frame(page), "the instructor dashboard")

    # One student's history, and one more attempt per question for them.
    row.get_by_role("link", name="Ada Lovelace").click()
    expect(instructor.get_by_role("heading", level=1, name="Ada Lovelace")).to_be_visible()
    history = instructor.get_by_role("region", name="History")
    # By the content's key (option A), with the letter the student's own order showed it under.
    shown = "" if letter == "A" else rf" \(shown to the student as {letter}\)"
    expect(history).to_contain_text(re.compile(rf"Attempt 1 at [\d:]+: option A{shown}\s+—\s+correct"))
    assert_accessible(tool_frame(page), "a student's history")
    instructor.get_by_label("Extra attempts per question").fill("1")
    instructor.get_by_role("button", name="Save").click()
    expect(instructor.get_by_role("region", name="Extra time and attempts")).to_contain_text(
        "1 extra attempt per question"
    )

    # The student's open question now allows three attempts.
    frame = tool_frame(other_page)
    frame.goto(frame.url)
    expect(student.get_by_text("Attempts: 3 left")).to_be_visible()
