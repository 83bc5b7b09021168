"""A shuffled question in a real browser: this attempt's own order lettered A-D, an explanation citing options by
the letters this student saw, and the instructor's review of the same answers by the content's option keys."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from quizzes.models import QuestionState
from tests.browser.support import (
    SEED_QUESTIONS,
    answer,
    assert_accessible,
    begin_question,
    launch_in_frame,
    next_question,
    shown_letter,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser


def test_a_shuffled_question_and_its_review(page: Page, other_page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    student = launch_in_frame(other_page, "student1")  # never configured: the timed mode, which shuffles
    start_set(student)
    begin_question(student, SEED_QUESTIONS[0][0])
    answer(student, SEED_QUESTIONS[0][1])
    next_question(student)
    title, right, wrong, _ = SEED_QUESTIONS[1]
    begin_question(student, title)

    # The options in the order stored with this attempt, lettered A-D in that order.
    state = QuestionState.objects.get(slug="skip-block-output-shape")
    texts = {"A": "(32, 32, 32, 64)", "B": "(32, 62, 62, 64)", "C": "(32, 64, 64, 128)", "D": "(32, 64, 64, 64)"}
    shown = [texts[key] for key, _id in state.presentation["options"]]
    labels = student.get_by_role("group", name="Choose one answer").locator("label")
    expect(labels).to_have_text(
        [re.compile(rf"^{letter}\s+{re.escape(text)}$") for letter, text in zip("ABCD", shown, strict=True)]
    )
    letters = {key: shown_letter(student, text) for key, text in texts.items()}
    frame = tool_frame(other_page)
    assert "Explanation" not in frame.content()
    assert_accessible(frame, "a shuffled open question")

    # A wrong answer, then the right one: the answers list and the explanation use this student's letters.
    answer(student, wrong)
    expect(student.get_by_text("Attempts: 1 left")).to_be_visible()
    answer(student, right)
    answers = student.get_by_role("region", name="Your answers").get_by_role("listitem")
    expect(answers).to_have_text([re.compile(rf"Attempt 1: {letters['A']}\s+—\s+not correct"),
                                  re.compile(rf"Attempt 2: {letters['D']}\s+—\s+correct")])
    explanation = student.get_by_role("region", name="Explanation")
    expect(explanation).to_contain_text(f"Correct answer: {letters['D']}. (32, 64, 64, 64)")
    expect(explanation).to_contain_text(f"Halving the size ({letters['A']}) would need stride 2")
    expect(explanation).to_contain_text(f"62x62 ({letters['B']})")
    expect(explanation).to_contain_text(f"128 channels ({letters['C']})")
    assert_accessible(frame, "a shuffled question with its explanation")

    # The instructor's review: the same answers, by the content's keys, and the order this student saw.
    instructor = launch_in_frame(page, "instructor1")
    instructor.get_by_role("link", name="Ada Lovelace").click()
    history = instructor.get_by_role("region", name="History")
    item = history.locator("section.history-item").filter(has_text=title)
    keys = [key for key, _id in state.presentation["options"]]
    order = ", ".join(f"{letter} = option {key}" for letter, key in zip("ABCD", keys, strict=True))
    expect(item).to_contain_text(f"Options in the order this student saw them: {order} (correct: option D).")
    first = "" if letters["A"] == "A" else rf" \(shown to the student as {letters['A']}\)"
    second = "" if letters["D"] == "D" else rf" \(shown to the student as {letters['D']}\)"
    expect(item.get_by_role("listitem")).to_have_text([
        re.compile(rf"Attempt 1 at [\d:]+: option A{first}\s+—\s+not correct"),
        re.compile(rf"Attempt 2 at [\d:]+: option D{second}\s+—\s+correct"),
    ])
    assert_accessible(tool_frame(page), "a student's history of a shuffled question")
