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

    tool.get_by_role("button", name="Finish and see my score", exact=True).click()
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
    expect(tool.get_by_role("heading", level=1, name="Finish this attempt?")).to_have_count(0)
    expect(tool.get_by_role("button", name="Finish and see my score", exact=True)).to_be_visible()
    assert Attempt.objects.get().finished_at is None
    tool.get_by_role("button", name="Finish and see my score", exact=True).click()
    tool.get_by_role("button", name="Yes, finish and see my score").click()
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    assert Attempt.objects.get().finished_at is not None


def test_the_review_shows_the_chosen_and_the_correct_option_and_the_list_the_running_score(
    page: Page, dev_lms
) -> None:
    dev_lms.register_tool(style="canvas")
    tool = launch_in_frame(page, "student3")
    start_set(tool)
    title, right, wrong, wrong2 = SEED_QUESTIONS[1]
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=title).click()
    begin_question(tool, title)

    answer(tool, wrong)  # one attempt left: the choice is marked, nothing gives the key away
    chosen = tool.locator(".option", has=tool.get_by_label(wrong))
    expect(chosen.get_by_text("Your answer", exact=True)).to_be_visible()
    expect(tool.get_by_text("Correct answer", exact=True)).to_have_count(0)
    expect(tool.get_by_role("radio", name=wrong)).not_to_be_checked()

    answer(tool, wrong2)  # out of attempts: the last choice stays selected, the correct option is highlighted
    last = tool.get_by_role("radio", name=wrong2)
    expect(last).to_be_checked()
    expect(last).to_have_accessible_description("Your answer")
    correct = tool.locator(".option", has=tool.get_by_label(right))
    expect(correct.get_by_text("Correct answer", exact=True)).to_be_visible()
    expect(correct).to_have_class(re.compile(r"\boption-correct\b"))
    expect(tool.get_by_role("radio", name=right)).to_have_accessible_description("Correct answer")
    assert_accessible(tool_frame(page), "a reviewed question with the chosen and the correct option")

    # The first question right: the list shows each answered challenge's points and the running total.
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=SEED_QUESTIONS[0][0]).click()
    begin_question(tool, SEED_QUESTIONS[0][0])
    answer(tool, SEED_QUESTIONS[0][1])
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    total = sum(c["points"] for c in content.current_set().challenges)
    expect(tool.get_by_text(re.compile(r"^Points so far:"))).to_have_text(f"Points so far: 1.00 of {total:g}")
    rows = tool.get_by_role("listitem")
    expect(rows.filter(has_text=SEED_QUESTIONS[0][0])).to_contain_text("1.00 of 1 point")
    expect(rows.filter(has_text=title)).to_contain_text("0.00 of 1 point")
    assert_accessible(tool_frame(page), "the challenge list with the running score")
