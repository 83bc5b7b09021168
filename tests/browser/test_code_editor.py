"""The code answer's editor (CodeMirror 6, bundled from frontend/ by `make static-build`) in a real browser inside
the LMS iframe: Python highlighting, line numbers, bracket matching, the size used against the limit, Tab indents
and the server receives the indented code, Escape then Tab leaves the editor, axe-core clean; without JavaScript
the plain textarea still posts the code."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from grading.models import CodeSubmission
from tests.browser.support import (
    assert_accessible,
    begin_question,
    code_editor,
    focused,
    launch_in_frame,
    start_set,
    tool_frame,
)

pytestmark = pytest.mark.browser
TITLE = "Fix the block: a projection shortcut"


def _open_code_challenge(page: Page):
    tool = launch_in_frame(page, "student1")
    start_set(tool)
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name="All challenges").click()
    tool.get_by_role("link", name=TITLE).click()
    begin_question(tool, TITLE)
    return tool


def test_tab_indents_python_in_the_editor_and_the_server_receives_the_indented_code(
    page: Page, dev_lms, console_log: list[str]
) -> None:
    dev_lms.register_tool(style="canvas")
    tool = _open_code_challenge(page)
    frame = tool_frame(page)
    editor = code_editor(tool)
    expect(editor).to_be_editable()
    expect(editor).to_contain_text("class ResNetBlock(nn.Module)")
    expect(tool.locator("textarea[name=code]")).to_be_hidden()  # still the form's field, kept in sync
    expect(tool.locator(".cm-lineNumbers .cm-gutterElement", has_text="1").first).to_be_visible()
    # Python highlighting: the keyword `class` is its own styled token.
    keyword = tool.locator(".cm-line span", has_text="class").first
    expect(keyword).to_have_text("class")
    assert keyword.evaluate("(el) => getComputedStyle(el).color") != editor.evaluate(
        "(el) => getComputedStyle(el).color"
    )
    expect(tool.get_by_text("of 64 KiB used.")).to_be_visible()
    expect(tool.get_by_text("press Escape and then Tab")).to_be_visible()
    assert_accessible(frame, "the code editor")

    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("def forward(self, x):")
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")  # whatever the auto-indent did, start the line at column 0 ...
    page.keyboard.press("Tab")  # ... and indent it with Tab: the focus stays in the editor
    page.keyboard.type("return (x + 1)")
    assert focused(frame)["tag"] == "DIV"
    # Bracket matching: the cursor after ")" marks the pair.
    expect(tool.locator(".cm-matchingBracket")).to_have_count(2)
    expect(tool.get_by_text("0.0 KiB of 64 KiB used.")).to_be_visible()

    # The keyboard way out: Escape, then Tab moves on to the submit button (and indents nothing).
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert focused(frame) == {"tag": "BUTTON", "type": "submit", "text": "Submit for grading"}
    page.keyboard.press("Enter")
    # The page comes back where the student was: the progress is right under the button, in view, in a polite
    # live region, not at the top of the page below the editor.
    status = tool.get_by_role("status").filter(has_text="Grading")
    expect(status).to_be_visible()
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_be_in_viewport()
    assert frame.url.endswith("#code-result")
    assert tool.locator("#answer-form").get_by_role("status").count() == 1  # inside the form, next to its button
    assert CodeSubmission.objects.get().code == "def forward(self, x):\n    return (x + 1)"
    assert not [entry for entry in console_log if "favicon.ico" not in entry], console_log


def test_without_the_editor_script_the_plain_textarea_posts_the_code(page: Page, dev_lms, console_log) -> None:
    """Progressive enhancement: when the bundle does not load (blocked, old browser, no JavaScript) the form's own
    textarea is there and labelled, and what is typed in it is what the server receives."""
    dev_lms.register_tool(style="canvas")
    page.route("**/js/build/editor*.js", lambda route: route.abort())
    tool = _open_code_challenge(page)
    textarea = tool.get_by_label("Your code (Python, PyTorch)")
    expect(textarea).to_have_value(re.compile(r"class ResNetBlock"))
    expect(tool.get_by_text("press Escape and then Tab")).to_be_hidden()
    textarea.fill("x = 1\n")
    tool.get_by_role("button", name="Submit for grading").click()
    expect(tool.get_by_role("status").filter(has_text="Grading")).to_be_visible()
    assert CodeSubmission.objects.get().code == "x = 1\n"
