"""Helpers for the browser tests: the accessibility check and the steps a person takes in the development LMS.

Selectors are roles, labels and visible text (what a screen-reader user would use), so finding an element is also
a small accessibility check of its name.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Frame, FrameLocator, Page, expect

# Pages render on a shared 2-core machine next to other test processes: generous, but bounded, waits.
ACTION_TIMEOUT_MS = 15_000
EXPECT_TIMEOUT_MS = 10_000

PHONE_VIEWPORT = {"width": 375, "height": 667}

# The accessibility bar: WCAG 2.1 level A and AA rules; serious and critical violations fail the test.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

# The iframe the development LMS puts the tool in (launch_frame.html).
TOOL_FRAME = "iframe.tool-frame"

# The seed challenge set, in order: (title, the correct option's text, one wrong option's text, another wrong one).
SEED_QUESTIONS = [
    (
        "Why do ResNet models use skip connections?",
        "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks.",
        "To reduce the number of parameters by skipping some layers during training.",
        "To increase the size of the input images automatically.",
    ),
    ("Output shape after a ResNet skip connection block", "(32, 64, 64, 64)", "(32, 32, 32, 64)", "(32, 62, 62, 64)"),
    (
        "Choosing the correct ResNet block for channel mismatch",
        "Use a 1x1 convolution on the input to match output channels before addition.",
        "Use max pooling on the output to reduce channels before addition.",
        "Skip the addition and concatenate input and output tensors instead.",
    ),
    (
        "Effect of skip connections on training loss curves",
        "The ResNet with skip connections usually shows faster loss decrease and lower final training loss.",
        "Both networks show identical loss curves because skip connections do not affect training.",
        "The network without skip connections converges faster due to simpler architecture.",
    ),
    (
        "Identifying the error in a ResNet skip connection implementation",
        "RuntimeError due to shape mismatch when adding tensors of different channel sizes.",
        "SyntaxError because of missing colon in class definition.",
        "TypeError because ReLU cannot be applied to convolution layers.",
    ),
]


# --- accessibility --------------------------------------------------------------------------------------------------


def assert_accessible(target: Page | Frame, where: str, *, exclude: list[str] | None = None) -> None:
    """Run axe-core (WCAG 2.1 A/AA rules) on a page or frame; fail on serious or critical violations.

    The failure message names each rule, its impact, the help URL and every offending element with axe's own
    explanation, so the report can be handed to whoever owns the template.
    """
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": WCAG_TAGS},
        "resultTypes": ["violations"],
        # Frames are checked on their own (each needs axe injected); the parent page does not report on them.
        "iframes": False,
    }
    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    results = Axe().run(target, context=context, options=options).response
    blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"{len(blocking)} serious/critical WCAG 2.1 A/AA violation(s) on {where} ({target.url}):"]
        for violation in blocking:
            lines.append(f"- {violation['id']} [{violation['impact']}]: {violation['help']} ({violation['helpUrl']})")
            for node in violation["nodes"][:10]:
                lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html'][:200]}")
                summary = (node.get("failureSummary") or "").replace("\n", " ")
                if summary:
                    lines.append(f"      {summary[:400]}")
        pytest.fail("\n".join(lines), pytrace=False)


def has_horizontal_scroll(target: Page | Frame) -> bool:
    """True when the document is wider than its viewport (content that forces sideways scrolling on a phone)."""
    return bool(
        target.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1")
    )


# --- the development LMS --------------------------------------------------------------------------------------------


def devlms_home(page: Page, user: str) -> None:
    """Open the development LMS home page as `user`."""
    page.goto(f"/devlms/?user={user}")
    expect(page.get_by_role("heading", level=1, name="Development LMS")).to_be_visible()


def activity_item(page: Page, link_title: str, course_title: str = "Deep Learning 101") -> Any:
    """The list item of an activity (resource link) in a course on the home page."""
    course = page.get_by_role("article").filter(has=page.get_by_role("heading", name=re.compile(course_title)))
    return course.get_by_role("listitem").filter(has=page.get_by_text(link_title, exact=True))


def launch_in_frame(
    page: Page, user: str, link_title: str = "ResNet challenges", course_title: str = "Deep Learning 101"
) -> FrameLocator:
    """From the home page as `user`, open an activity in the course page: the tool loads inside the LMS iframe."""
    devlms_home(page, user)
    activity_item(page, link_title, course_title).get_by_role("link", name="Open in the course page").click()
    expect(page.get_by_role("heading", level=1, name=course_title)).to_be_visible()
    return page.frame_locator(TOOL_FRAME)


def tool_frame(page: Page) -> Frame:
    """The tool's frame (a Frame: for axe and evaluate; it stays the same object across the frame's navigations)."""
    handle = page.locator(TOOL_FRAME).element_handle(timeout=ACTION_TIMEOUT_MS)
    frame = handle.content_frame()
    assert frame is not None, "the LMS iframe has no content frame"
    frame.wait_for_load_state()
    return frame


# --- the player -----------------------------------------------------------------------------------------------------


def start_set(tool: FrameLocator | Page) -> None:
    """On the player's first page, press Start: the first challenge opens."""
    tool.get_by_role("button", name=re.compile(r"^Start( a new attempt)?$")).click()
    expect(tool.get_by_text(re.compile(r"Question 1 of \d+"))).to_be_visible()


def begin_question(tool: FrameLocator | Page, title: str) -> None:
    """On a challenge's page, press "Start question" (its clock starts on the server) and wait for the answer form."""
    expect(tool.get_by_role("heading", level=1, name=title)).to_be_visible()
    tool.get_by_role("button", name="Start question").click()
    expect(
        tool.get_by_role("group", name="Choose one answer").or_(tool.get_by_label(re.compile("^Your code")))
    ).to_be_visible()


def next_question(tool: FrameLocator | Page) -> None:
    """Follow the pager's "Next" link."""
    tool.get_by_role("navigation", name="Other challenges").get_by_role("link", name=re.compile("Next")).click()


def answer(tool: FrameLocator | Page, option_text: str) -> None:
    """Choose an option by its label and submit."""
    tool.get_by_label(option_text).check()
    tool.get_by_role("button", name="Submit answer").click()


def finish_attempt(tool: FrameLocator | Page) -> None:
    """From the challenge list, finish the attempt: the confirmation step, then the summary."""
    tool.get_by_role("button", name="Finish and see my score", exact=True).click()
    expect(tool.get_by_role("heading", level=1, name="Finish this attempt?")).to_be_visible()
    tool.get_by_role("button", name="Yes, finish and see my score").click()
    expect(tool.get_by_role("heading", level=1, name="Your result")).to_be_visible()


def shown_letter(tool: FrameLocator | Page, option_text: str) -> str:
    """The letter this attempt shows an option under (graded modes shuffle the options of each attempt)."""
    return tool.locator("label", has_text=option_text).locator(".key").inner_text().strip()


def code_editor(tool: FrameLocator | Page) -> Any:
    """The code answer's editor (CodeMirror's content element, a textbox named by the form's label). Looked for inside
    the editor: until its deferred script has run, the plain textarea has the same role and name, and a paste sent to
    it would be lost when the editor takes the textarea's text (a race seen on a loaded machine)."""
    return tool.locator(".cm-editor").get_by_role("textbox", name="Your code (Python, PyTorch)")


def paste_code(tool: FrameLocator | Page, text: str) -> None:
    """Replace the code editor's text as a paste would (typing long code through the protocol would take minutes)."""
    code_editor(tool).evaluate(
        """(el, text) => {
          el.focus();
          document.execCommand("selectAll");
          const data = new DataTransfer();
          data.setData("text/plain", text);
          el.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        text,
    )


# --- keyboard ---------------------------------------------------------------------------------------------------------

_FOCUSED_JS = """() => {
  if (!document.hasFocus()) { return null; }
  const e = document.activeElement;
  if (!e || e === document.body) { return null; }
  const label = e.labels && e.labels.length ? e.labels[0].innerText : "";
  return {tag: e.tagName, type: e.type || "", text: (label || e.innerText || e.value || "").trim()};
}"""


def focused(frame: Frame) -> dict[str, str] | None:
    """What has the keyboard focus inside `frame` ({tag, type, text}), or None when the focus is elsewhere."""
    return frame.evaluate(_FOCUSED_JS)


def tab_to(page: Page, frame: Frame, text: str | re.Pattern[str], *, max_presses: int = 40) -> dict[str, str]:
    """Press Tab (only Tab) until the element named `text` inside `frame` has the focus."""
    seen = []
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        now = focused(frame)
        seen.append(now)
        if now and (re.search(text, now["text"]) if isinstance(text, re.Pattern) else now["text"] == text):
            return now
    raise AssertionError(f"Tab never reached {text!r} in the tool frame; focus went through: {seen}")


# --- placements made as deep linking makes them -----------------------------------------------------------------------


def place_activity(
    dev_lms: Any,
    title: str,
    *,
    challenge_slugs: list[str],
    mode_slug: str = "timed",
    challenge_set: Any = None,
    points: float = 10.0,
) -> str:
    """Put an activity configured like the deep-linking form does into course1 (a placement draft whose uuid the LMS
    stores as the custom parameter `placement`, and a gradebook column). Returns the LMS link's slug."""
    from lti_tool.models import Registration
    from quizzes import services as quiz_services

    tool = dev_lms._tool()
    registration = Registration.objects.get(issuer=dev_lms.issuer, client_id=tool.client_id)
    draft = quiz_services.create_placement_draft(
        registration=registration,
        context=None,
        created_by=None,
        challenge_slugs=challenge_slugs,
        mode_slug=mode_slug,
        points=points,
        title=title,
        challenge_set=challenge_set,
    )
    return dev_lms.add_resource_link(
        title=title,
        custom={"placement": str(draft.uuid)},
        line_item={"label": title, "scoreMaximum": points, "resourceId": f"placement-{draft.uuid}"},
    )
