"""The student player in a real browser, inside the development LMS's course-page iframe (and, on a phone, in a new
window): the five seed questions, attempts, hints, a timer running out, a code challenge, the summary and badge,
keyboard-only use, a phone-sized screen, and axe-core accessibility checks of the pages a student meets."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import FrameLocator, Page, expect

from quizzes import content
from quizzes.models import Answer, QuestionState
from tests.browser.support import (
    SEED_QUESTIONS,
    activity_item,
    answer,
    assert_accessible,
    begin_question,
    code_editor,
    devlms_home,
    finish_attempt,
    focused,
    has_horizontal_scroll,
    launch_in_frame,
    next_question,
    place_activity,
    shown_letter,
    start_set,
    tab_to,
    tool_frame,
)

pytestmark = pytest.mark.browser

SEED_SLUGS = [
    "why-skip-connections",
    "skip-block-output-shape",
    "channel-mismatch-block",
    "skip-loss-curves",
    "debug-skip-connection",
]


def _answers_list(tool: FrameLocator):
    return tool.get_by_role("region", name="Your answers").get_by_role("listitem")


def _summary(tool: FrameLocator | Page, term: str):
    """The value next to a term ("Score", "Badge", ...) on the summary page."""
    return tool.locator(f'dt:text-is("{term}") + dd')


def _expect_locked(tool: FrameLocator) -> None:
    radios = tool.get_by_role("group", name="Choose one answer").get_by_role("radio")
    expect(radios.first).to_be_visible()
    for radio in radios.all():
        expect(radio).to_be_disabled()
    expect(tool.get_by_role("button", name="Submit answer")).to_have_count(0)


def test_student_plays_the_seed_questions_inside_the_lms_iframe(
    page: Page, dev_lms, live_server, console_log: list[str]
) -> None:
    """An activity added by hand (never configured) plays the whole ResNet set in timed-challenge mode."""
    dev_lms.register_tool(style="canvas")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    tool = launch_in_frame(page, "student1")
    frame = tool_frame(page)
    expect(tool.get_by_text("Timed challenge", exact=True)).to_be_visible()
    start_set(tool)

    # 1. The seed's first question: the clock runs, two attempts, a hint on request, and the seed's answer is right.
    title, right, wrong, _ = SEED_QUESTIONS[0]
    begin_question(tool, title)
    expect(tool.get_by_text("Attempts: 2 left")).to_be_visible()
    expect(tool.locator("[data-countdown]")).to_contain_text(re.compile(r"\b[12]:\d\d remaining"))
    for option in ("To allow gradients", "To reduce the number", "To increase the size", "To replace convolutional"):
        expect(tool.get_by_role("radio", name=re.compile(option))).to_be_enabled()
    # Nothing on the open question gives the answer away.
    assert "Explanation" not in frame.content()
    assert_accessible(frame, "an open question")
    tool.get_by_role("button", name=re.compile("Show hint")).click()
    expect(tool.get_by_role("complementary", name=re.compile("Hint"))).to_contain_text(
        "Think about what happens to gradients when networks get very deep."
    )
    letter = shown_letter(tool, "To allow gradients to flow directly")  # timed mode: this attempt's own order
    answer(tool, "To allow gradients to flow directly")
    expect(_answers_list(tool)).to_have_text([re.compile(rf"Attempt 1: {letter}\s+—\s+correct")])
    expect(tool.get_by_text("Correct", exact=True)).to_be_visible()
    expect(tool.get_by_role("region", name="Explanation")).to_contain_text(f"Correct answer: {letter}")
    expect(tool.get_by_role("button", name="Submit answer")).to_have_count(0)
    assert_accessible(frame, "an answered question with its explanation")

    # 2. Two wrong answers exhaust a question; the key is revealed only then.
    next_question(tool)
    title, right, wrong, wrong2 = SEED_QUESTIONS[1]
    begin_question(tool, title)
    expect(tool.get_by_role("figure")).to_contain_text("tf.keras.layers.Add()")  # the snippet, highlighted
    wrong_letter, right_letter = shown_letter(tool, wrong), shown_letter(tool, right)
    answer(tool, wrong)
    expect(_answers_list(tool)).to_have_text([re.compile(rf"Attempt 1: {wrong_letter}\s+—\s+not correct")])
    expect(tool.get_by_text("Attempts: 1 left")).to_be_visible()
    expect(tool.get_by_role("region", name="Explanation")).to_have_count(0)
    answer(tool, wrong2)
    expect(_answers_list(tool)).to_have_count(2)
    expect(tool.get_by_text("No attempts left", exact=True)).to_be_visible()
    _expect_locked(tool)
    expect(tool.get_by_role("region", name="Explanation")).to_contain_text(f"Correct answer: {right_letter}")

    # 3-5. The others, right the first time.
    for title, right, _, _ in SEED_QUESTIONS[2:]:
        next_question(tool)
        begin_question(tool, title)
        answer(tool, right)
        expect(_answers_list(tool)).to_have_text([re.compile(r"Attempt 1: [A-D]\s+—\s+correct")])

    # Then the code challenges: the code editor holds the starter code.
    next_question(tool)
    begin_question(tool, "Fix the block: a projection shortcut")
    code = code_editor(tool)
    expect(code).to_be_editable()
    expect(code).to_contain_text(re.compile(r"class ResNetBlock\(nn\.Module\)"))
    expect(tool.get_by_role("button", name="Submit for grading")).to_be_visible()
    assert_accessible(frame, "a code challenge")

    # The list shows where the student stands; finishing leads to the summary.
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    challenge_list = tool.get_by_role("list").filter(has=tool.get_by_role("link", name=SEED_QUESTIONS[0][0]))
    expect(challenge_list.get_by_role("listitem")).to_have_count(9)
    finish_attempt(tool)

    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    # 3 right first time (1 point each) + the first with the hint (10% off) = 3.9, out of every challenge's points.
    total = sum(c["points"] for c in content.current_set().challenges)
    expect(_summary(tool, "Score")).to_contain_text(f"3.90 of {total:g} points")
    expect(_summary(tool, "Badge")).to_contain_text("Not earned: get every challenge correct")
    rows = tool.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(10)
    expect(rows.filter(has_text=SEED_QUESTIONS[1][0])).to_contain_text("No attempts left")
    assert_accessible(frame, "the summary")
    # No script error and no Content-Security-Policy violation on the way, and nothing loaded from elsewhere (no CDN).
    assert not [entry for entry in console_log if "favicon.ico" not in entry], console_log
    assert requested and not [url for url in requested if not url.startswith((live_server.url, "data:"))], requested


def test_all_five_correct_earns_the_mastery_badge(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    place_activity(dev_lms, "ResNet quiz", challenge_slugs=SEED_SLUGS)
    tool = launch_in_frame(page, "student2", link_title="ResNet quiz")
    expect(tool.get_by_role("complementary", name="Badge")).to_contain_text("ResNet Mastery Badge")
    start_set(tool)

    for index, (title, right, _, _) in enumerate(SEED_QUESTIONS):
        if index:
            next_question(tool)
        begin_question(tool, title)
        answer(tool, right)
        expect(_answers_list(tool)).to_have_text([re.compile(r"correct$")])

    # Every challenge is finished, so the attempt is complete: the player shows the result.
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    expect(_summary(tool, "Badge")).to_have_text("ResNet Mastery Badge")
    expect(_summary(tool, "Score")).to_contain_text("5.00 of 5 points")
    assert_accessible(tool_frame(page), "the summary with a badge")


TIMER_SET = """\
slug: timer-drill
title: Timer drill
challenges:
  - slug: quick-one
    kind: choice
    title: A quick question
    category: Conceptual
    difficulty: intermediate
    time_limit_s: 10
    attempts: 2
    points: 1
    prompt: What does a residual block add to its input?
    options:
      - {key: A, text: The output of its layers.}
      - {key: B, text: Nothing at all.}
    answer: A
    hint: y = F(x) + x.
    explanation: A residual block computes F(x) + x.
  - slug: second-one
    kind: choice
    title: Another question
    category: Conceptual
    difficulty: intermediate
    time_limit_s: 60
    attempts: 2
    points: 1
    prompt: Do skip connections add parameters?
    options:
      - {key: A, text: "No, an identity shortcut has none."}
      - {key: B, text: "Yes, many."}
    answer: A
    hint: Identity.
    explanation: The identity shortcut has no parameters.
"""


def open_timer_drill(page: Page, dev_lms: Any, tmp_path: Path) -> FrameLocator:
    """Store TIMER_SET, place it in course1 and open its 10-second question as student3 in the LMS iframe."""
    set_file = tmp_path / "timer-drill" / "set.yaml"
    set_file.parent.mkdir()
    set_file.write_text(TIMER_SET, encoding="utf-8")
    timer_set, _ = content.store_set(content.read_set_file(set_file))
    dev_lms.register_tool(style="canvas")
    place_activity(dev_lms, "Timer drill", challenge_slugs=["quick-one", "second-one"], challenge_set=timer_set)
    tool = launch_in_frame(page, "student3", link_title="Timer drill")
    start_set(tool)
    begin_question(tool, "A quick question")
    return tool


def test_a_timer_running_out_locks_the_question_and_a_late_answer_is_refused(
    page: Page, dev_lms, tmp_path: Path
) -> None:
    """A content author may give a question a 10-second timer (the schema's minimum): the countdown reaches zero,
    the form locks, the server marks the question "Time ran out", and an answer from a stale tab is refused."""
    tool = open_timer_drill(page, dev_lms, tmp_path)
    frame = tool_frame(page)
    question_url = frame.url
    timer = tool.locator("[data-countdown]")
    expect(timer).to_contain_text(re.compile(r"\b0:(10|0\d) remaining"))

    # A reload shows the server's remaining time, it does not restart the clock.
    time.sleep(1.5)
    frame.goto(question_url)
    expect(timer).to_be_visible()
    assert int(timer.get_attribute("data-remaining")) < 10

    # A second tab where the countdown script never ran (a sleeping laptop, a blocked script).
    stale = page.context.new_page()
    stale.route(re.compile(r"/static/js/countdown\.js"), lambda route: route.abort())
    stale.goto(question_url)
    expect(stale.get_by_role("button", name="Submit answer")).to_be_visible()

    # The countdown reaches zero: the form locks and, once the server's grace period is over, it shows the verdict.
    expect(tool.get_by_role("radio", name=re.compile("The output of its layers"))).to_be_disabled(timeout=20_000)
    expect(timer).to_contain_text("0:00 remaining")
    expect(tool.get_by_text("Time ran out", exact=True)).to_be_visible(timeout=20_000)
    _expect_locked(tool)

    # The stale tab's answer arrives after the deadline and the grace period: refused, clearly, and not stored.
    state = QuestionState.objects.get(slug="quick-one", attempt__placement__title="Timer drill")
    grace_s = state.attempt.placement.rules["grace_s"]
    while timezone.now() <= state.deadline + timedelta(seconds=grace_s):
        time.sleep(0.2)
    stale.get_by_label("The output of its layers.").check()
    stale.get_by_role("button", name="Submit answer").click()
    expect(stale.get_by_role("alert")).to_have_text(re.compile(r"Time is up|time ran out", re.IGNORECASE))
    assert not Answer.objects.filter(state=state).exists()
    assert_accessible(stale, "the refusal page")
    stale.close()

    # The other question's clock is its own and still open.
    next_question(tool)
    begin_question(tool, "Another question")
    expect(tool.get_by_role("button", name="Submit answer")).to_be_enabled()


def test_a_question_can_be_answered_with_the_keyboard_alone(page: Page, dev_lms) -> None:
    dev_lms.register_tool(style="canvas")
    tool = launch_in_frame(page, "student4")
    # The launch passes through the login page (platform storage) first: tab through the player, not through that.
    expect(tool.get_by_role("button", name="Start")).to_be_visible()
    frame = tool_frame(page)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus starts on the LMS page, as after a page load

    # The tool's first tab stop is its skip link.
    tab_to(page, frame, "Skip to content")
    tab_to(page, frame, "Start")
    page.keyboard.press("Enter")
    expect(frame.get_by_role("button", name="Start question")).to_be_visible()
    tab_to(page, frame, "Start question")
    page.keyboard.press("Enter")
    expect(frame.get_by_role("group", name="Choose one answer")).to_be_visible()

    # Into the radio group: Space chooses, the arrow keys move the choice, Enter on the button submits. The options
    # come in this attempt's own order (timed mode shuffles), lettered A, B, C, D in that order.
    right = SEED_QUESTIONS[0][1]
    letter = shown_letter(frame, right)
    first = tab_to(page, frame, re.compile(r"^A\s"))
    assert first["type"] == "radio"
    page.keyboard.press("Space")
    expect(frame.get_by_role("radio", name=re.compile(r"^A\s"))).to_be_checked()
    page.keyboard.press("ArrowDown")
    assert re.match(r"^B\s", focused(frame)["text"])
    expect(frame.get_by_role("radio", name=re.compile(r"^B\s"))).to_be_checked()
    page.keyboard.press("ArrowUp")
    expect(frame.get_by_role("radio", name=re.compile(r"^A\s"))).to_be_checked()
    for _ in range("ABCD".index(letter)):
        page.keyboard.press("ArrowDown")
    expect(frame.get_by_role("radio", name=re.compile(re.escape(right)))).to_be_checked()
    tab_to(page, frame, "Submit answer")
    page.keyboard.press("Enter")

    expect(frame.get_by_role("region", name="Your answers")).to_contain_text(
        re.compile(rf"Attempt 1: {letter}\s+—\s+correct")
    )


def test_the_player_fits_a_phone_screen(phone_page: Page, dev_lms) -> None:
    """On a phone the LMS app opens the tool in its own window: no page needs sideways scrolling at 375x667."""
    dev_lms.register_tool(style="canvas")
    devlms_home(phone_page, "student5")
    with phone_page.context.expect_page() as new_window:
        activity_item(phone_page, "ResNet challenges").get_by_role(
            "link", name=re.compile("^Open in a new window")
        ).click()
    window = new_window.value
    expect(window.get_by_role("button", name="Start")).to_be_visible()
    assert window.viewport_size == {"width": 375, "height": 667}
    assert not has_horizontal_scroll(window), "the start page scrolls sideways"

    start_set(window)
    begin_question(window, SEED_QUESTIONS[0][0])
    assert not has_horizontal_scroll(window), "a question scrolls sideways"
    next_question(window)
    begin_question(window, SEED_QUESTIONS[1][0])  # the one with a code snippet
    assert not has_horizontal_scroll(window), "a question with a code snippet scrolls sideways"
    window.goto(window.url.replace("skip-block-output-shape", "resnet-block-stride"))
    begin_question(window, re.compile("stride", re.IGNORECASE))
    assert not has_horizontal_scroll(window), "a code challenge scrolls sideways"
    assert_accessible(window, "a code challenge on a phone")

    window.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    finish_attempt(window)
    expect(window.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    assert not has_horizontal_scroll(window), "the summary scrolls sideways"
    assert_accessible(window, "the summary on a phone")
