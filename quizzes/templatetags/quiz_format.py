"""Formatting for quiz pages: Python highlighting, a small safe markdown subset, durations, loss-curve charts.

Everything is escaped first and only then wrapped in markup, so content can never inject HTML.
"""

from __future__ import annotations

import io
import keyword
import math
import re
import token
import tokenize
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_BUILTINS = {"print", "len", "range", "super", "int", "float", "str", "dict", "list", "True", "False", "None"}


def _token_class(tok: tokenize.TokenInfo) -> str:
    if tok.type == token.NAME:
        if keyword.iskeyword(tok.string):
            return "kw"
        if tok.string in _BUILTINS:
            return "bi"
        return ""
    if tok.type == token.STRING:
        return "str"
    if tok.type == token.NUMBER:
        return "num"
    if tok.type == tokenize.COMMENT:
        return "com"
    if tok.type == token.OP:
        return "op"
    return ""


def highlight_python(source: str) -> str:
    """Wrap Python tokens in <span class="tok-..."> (escaped); falls back to plain escaped text."""
    lines = source.splitlines(keepends=True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return escape(source)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out: list[str] = []
    position = 0
    for tok in tokens:
        css = _token_class(tok)
        if not css or tok.start[0] > len(lines):
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        if start < position:
            continue
        out.append(escape(source[position:start]))
        out.append(f'<span class="tok-{css}">{escape(source[start:end])}</span>')
        position = end
    out.append(escape(source[position:]))
    return "".join(out)


@register.filter
def highlight(source: str, language: str = "python") -> SafeString:
    if (language or "").lower() in {"python", "py"}:
        return mark_safe(highlight_python(source or ""))  # noqa: S308 - every piece is escaped above
    return mark_safe(escape(source or ""))  # noqa: S308


_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    text = escape(text)
    text = _INLINE_CODE.sub(r"<code>\1</code>", text)
    return _BOLD.sub(r"<strong>\1</strong>", text)


@register.filter
def simple_markdown(text: str) -> SafeString:
    """Paragraphs, "- " and "1. " lists, `code` and **bold**; nothing else (all text escaped)."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        lines = block.splitlines()
        items: list[list[str]] = []
        ordered = bool(lines) and re.match(r"^\d+\.\s", lines[0].strip()) is not None
        bullet = bool(lines) and lines[0].strip().startswith("- ")
        if bullet or ordered:
            for line in lines:
                stripped = line.strip()
                match = re.match(r"^(?:- |\d+\.\s)(.*)$", stripped)
                if match:
                    items.append([match.group(1)])
                elif items:
                    items[-1].append(stripped)
            tag = "ol" if ordered else "ul"
            body = "".join(f"<li>{_inline(' '.join(item))}</li>" for item in items)
            blocks.append(f"<{tag}>{body}</{tag}>")
        else:
            blocks.append(f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>")
    return mark_safe("".join(blocks))  # noqa: S308 - built from escaped text only


@register.filter
def duration(seconds: Any) -> str:
    """m:ss (or h:mm:ss) for a number of seconds; an en dash for None."""
    if seconds is None or seconds == "":
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def percent(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def shuffle_defaults(modes: Any) -> str:
    """Which modes shuffle options by default, from modes.yaml: "Timed challenge, Exam: shuffled; Practice: ..."."""
    modes = list(modes.values()) if isinstance(modes, dict) else []
    on = [m["title"] for m in modes if m.get("shuffle_options")]
    off = [m["title"] for m in modes if not m.get("shuffle_options")]
    parts = ([f"{', '.join(on)}: shuffled"] if on else []) + ([f"{', '.join(off)}: as in the content"] if off else [])
    return "; ".join(parts)


@register.filter
def starter_note(check: Any) -> str:
    """What a check is worth next to the starter code (grading.judging.beyond_starter), e.g. " (the starter code
    already passes this check: no points)"; "" for a check the starter fails."""
    given = check.get("starter_points") if isinstance(check, dict) else None
    if not given:
        return ""
    if not check.get("max_points"):
        return " (the starter code already passes this check: no points)"
    return f" (the starter code already earns {given:g} of this check's points: only what you add counts)"


@register.inclusion_tag("quizzes/_loss_chart.html")
def loss_chart(
    curves: dict[str, list[float]] | None, norms: dict[str, float] | None = None, width: int = 600, height: int = 300
) -> dict[str, Any]:
    """An inline SVG line chart of the plain and residual loss curves (log-scaled losses when they span decades)."""
    if not curves:
        return {"curves": None}
    pad_left, pad_right, pad_top, pad_bottom = 56, 16, 16, 40
    values = [v for series in curves.values() for v in series if math.isfinite(v)]
    if not values:
        return {"curves": None}
    use_log = min(values) > 0 and max(values) / min(values) > 100
    transform = (lambda v: math.log10(v)) if use_log else (lambda v: v)
    low, high = min(map(transform, values)), max(map(transform, values))
    if high - low < 1e-12:
        high = low + 1.0
    steps = max(len(series) for series in curves.values())
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom

    def point(index: int, value: float) -> str:
        x = pad_left + (index / max(steps - 1, 1)) * plot_w
        y = pad_top + (1 - (transform(value) - low) / (high - low)) * plot_h
        return f"{x:.1f},{y:.1f}"

    series = []
    for name, css in (("plain", "plain"), ("residual", "residual")):
        data = curves.get(name) or []
        points = " ".join(point(i, v) for i, v in enumerate(data) if math.isfinite(v))
        final = next((v for v in reversed(data) if math.isfinite(v)), None)
        series.append({"name": name, "css": css, "points": points, "final": final})

    def label(v: float) -> str:
        return f"{10 ** v:.3g}" if use_log else f"{v:.3g}"

    ticks = [
        {"y": f"{pad_top + (1 - i / 4) * plot_h:.1f}", "label": label(low + (high - low) * i / 4)} for i in range(5)
    ]
    return {
        "curves": curves,
        "series": series,
        "width": width,
        "height": height,
        "ticks": ticks,
        "x0": pad_left,
        "x1": width - pad_right,
        "y0": pad_top,
        "y1": height - pad_bottom,
        "steps": steps,
        "log": use_log,
        "xlabel_y": height - 8,
        "xmid": pad_left + plot_w / 2,
        "norms": norms,
    }
