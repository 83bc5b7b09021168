"""A code answer end to end in a real browser with real parts: the student submits code in the player inside the
LMS iframe, a real Celery worker grades it in the bubblewrap sandbox, the page follows the grading live (its status
script reloads when the result is final), the score reaches the LMS gradebook, and the instructor reviews the
submission from the gradebook (LtiSubmissionReviewRequest)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from quizzes import content
from tests.browser.support import (
    SEED_QUESTIONS,
    assert_accessible,
    begin_question,
    devlms_home,
    finish_attempt,
    launch_in_frame,
    paste_code,
    start_set,
    tool_frame,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.sandbox]

SLUG = "resnet-block-projection"
TITLE = "Fix the block: a projection shortcut"
# The first grading starts the sandbox's warm Python (torch import) on a shared machine: a generous bound.
GRADING_TIMEOUT_MS = 240_000


def test_code_is_graded_live_reaches_the_gradebook_and_the_instructor_reviews_it(
    page: Page, other_page: Page, dev_lms, celery_worker_process
) -> None:
    dev_lms.register_tool(style="canvas")
    tool = launch_in_frame(page, "student5")
    start_set(tool)
    expect(tool.get_by_role("heading", level=1, name=SEED_QUESTIONS[0][0])).to_be_visible()
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=TITLE).click()
    begin_question(tool, TITLE)

    solution = content.get_code_challenge(SLUG).solution_source
    paste_code(tool, solution)
    tool.get_by_role("button", name="Submit for grading").click()

    # While the worker grades, the page says so; its script follows the submission and shows the result.
    expect(tool.get_by_role("status").filter(has_text="Grading")).to_be_visible()
    expect(tool.get_by_text(re.compile(r"2\.00\s+of 2 points"))).to_be_visible(timeout=GRADING_TIMEOUT_MS)
    checks = tool.get_by_role("list").filter(has_text="passed").get_by_role("listitem")
    expect(checks.first).to_be_visible()
    for check in checks.all():
        expect(check).to_contain_text("passed")
    expect(tool.get_by_text("Correct", exact=True)).to_be_visible()
    assert_accessible(tool_frame(page), "a graded code challenge")

    # Finishing sends the attempt's score to the LMS, through the worker.
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    finish_attempt(tool)
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    result = dev_lms.wait_for(
        lambda: (r := dev_lms.result(user="student5")) and r["grading_progress"] == "FullyGraded" and r, timeout=90
    )
    assert result, f"no FullyGraded score reached the LMS; worker log:\n{celery_worker_process.read_text()[-3000:]}"
    total = sum(c["points"] for c in content.current_set().challenges)
    expected = f"{100 * 2 / total:.2f}"

    # The instructor sees it in the LMS gradebook and opens the submission from there.
    devlms_home(other_page, "instructor1")
    other_page.get_by_role("link", name="Gradebook").first.click()
    gradebook = other_page.get_by_role("table", name="Scores by student and gradebook column")
    row = gradebook.get_by_role("row").filter(has_text="student5")
    expect(row).to_contain_text(re.compile(rf"{re.escape(expected)}\s+FullyGraded"))
    assert_accessible(other_page, "the development LMS gradebook")
    other_page.get_by_role("link", name=re.compile(r"^Review Emmy Noether on ResNet challenges$")).click()
    review = other_page.frame_locator("iframe.tool-frame")
    expect(review.get_by_role("heading", level=1, name="Emmy Noether")).to_be_visible()
    history = review.get_by_role("region", name="History")
    submission = history.get_by_text(re.compile(r"Submission 1 \(graded, 2\.00 points\)"))
    submission.click()  # a <details>: open it
    expect(history.get_by_role("code").filter(has_text="class ResNetBlock")).to_be_visible()
    assert_accessible(tool_frame(other_page), "the submission review")
