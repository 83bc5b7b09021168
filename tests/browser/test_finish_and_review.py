"""Finishing asks first and lists what is unanswered (a server-rendered step, no JavaScript needed); the review of
an answered question shows the option the student chose and, once the mode's rules allow, the correct one; the
challenge list shows the running score. Axe-core clean on each page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from quizzes import content
from quizzes.models import Attempt
from tests.browser.support import (
    SEED_QUESTIONS,
    answer,
    assert_accessible,
    begin_question,
    launch_in_frame,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser


def test_finishing_lists_the_unanswered_challenges_and_needs_confirmation(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    tool = launch_in_frame(page, "student2")
    start_set(tool)
    title, right, _, _ = SEED_QUESTIONS[0]
    begin_question(tool, title)
    answer(tool, right)
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()

    tool.get_by_role("button", name="Finish and see my score").click()
    expect(tool.get_by_role("heading", level=1, name="Finish this attempt?")).to_be_visible()
    challenges = content.current_set().challenges
    unanswered = tool.get_by_role("region", name=re.compile(r"not answered"))
    expect(unanswered.get_by_role("heading")).to_have_text(f"{len(challenges) - 1} challenges not answered")
    expect(unanswered.get_by_role("listitem")).to_have_text([c["title"] for c in challenges[1:]])
    expect(unanswered.get_by_role("link", name="Fix the block: a projection shortcut")).to_be_visible()
    assert_accessible(tool_frame(page), "the finish confirmation")
    assert Attempt.objects.get().finished_at is None  # asking changed nothing

    # "No" goes back with the attempt still open; "Yes" finishes it.
    tool.get_by_role("link", name="No, back to the challenges").click()
    expect(tool.get_by_role("button", name="Finish and see my score")).to_be_visible()
    assert Attempt.objects.get().finished_at is None
    tool.get_by_role("button", name="Finish and see my score").click()
    tool.get_by_role("button", name="Yes, finish and see my score").click()
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    assert Attempt.objects.get().finished_at is not None
