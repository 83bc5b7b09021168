"""Every form button of the player, double-clicked in a real browser inside the LMS iframe, sends its form once: no
error page, one answer recorded. Code over the size limit is stopped in the browser with a message (the server has
its own 413 page for browsers without JavaScript: tests/config/test_errors.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from grading.models import CodeSubmission
from quizzes.models import Answer, QuestionState
from tests.browser.support import SEED_QUESTIONS, begin_question, launch_in_frame, paste_code

pytestmark = pytest.mark.browser
CODE_TITLE = "Fix the block: a projection shortcut"


def test_double_clicking_every_player_button_sends_each_form_once(page: Page, dev_lms, console_log) -> None:
    dev_lms.register_tool(style="canvas")
    posts: list[str] = []
    failures: list[tuple[int, str]] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/p/" in r.url else None)
    page.on("response", lambda r: failures.append((r.status, r.url)) if r.status >= 400 else None)
    tool = launch_in_frame(page, "student1")

    tool.get_by_role("button", name="Start").dblclick()
    title, right, wrong, _ = SEED_QUESTIONS[0]
    expect(tool.get_by_role("heading", level=1, name=title)).to_be_visible()
    tool.get_by_role("button", name="Start question").dblclick()
    tool.get_by_role("button", name=re.compile("Show hint")).dblclick()
    expect(tool.get_by_role("complementary", name=re.compile("Hint"))).to_be_visible()
    tool.get_by_label(wrong).check()
    tool.get_by_role("button", name="Submit answer").dblclick()
    expect(tool.get_by_role("region", name="Your answers").get_by_role("listitem")).to_have_count(1)
    expect(tool.get_by_text("Attempts: 1 left")).to_be_visible()
    state = QuestionState.objects.get(slug="why-skip-connections")
    assert Answer.objects.filter(state=state).count() == 1 and state.attempts_used == 1

    # Code: over the limit the browser refuses to send it and says why; the code stays in the form.
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=CODE_TITLE).click()
    begin_question(tool, CODE_TITLE)
    expect(tool.get_by_text("At most 64 KiB of code.")).to_be_visible()
    # 120 KB, pasted into the code editor. Megabytes without JavaScript get the server's 413 page:
    # tests/config/test_errors.py.
    paste_code(tool, "x = 1\n" * 20000)
    expect(tool.get_by_text("117.2 KiB of 64 KiB used.")).to_be_visible()
    posts_before = len(posts)
    tool.get_by_role("button", name="Submit for grading").click()
    expect(tool.get_by_role("alert")).to_contain_text("at most 64 KiB can be submitted")
    assert len(posts) == posts_before and not CodeSubmission.objects.exists()
    paste_code(tool, "import torch\n")
    tool.get_by_role("button", name="Submit for grading").dblclick()
    expect(tool.get_by_role("status").filter(has_text="Grading")).to_be_visible()
    assert CodeSubmission.objects.count() == 1

    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("button", name="Finish and see my score").dblclick()
    tool.get_by_role("button", name="Yes, finish and see my score").dblclick()
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()
    assert not failures, failures
    assert len(posts) == len(set(posts)), posts  # each form went once
    assert not [entry for entry in console_log if "favicon.ico" not in entry], console_log
