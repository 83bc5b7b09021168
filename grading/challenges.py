"""What grading is told by the app that owns the challenges (quizzes), so grading never imports it.

grading is the lower layer: it runs code against hidden checks and stores the result, and knows nothing of
challenge sets, attempts or courses. The app above registers, in its AppConfig.ready() (which runs in every web and
worker process):

- a challenge source: one code challenge of one content version (what to run and how to score it), and the current
  ones (for the warm pool);
- an access rule: who may see a submission's live status, and whether a student may see its result yet.

Nothing registered: no challenge is known and only Django staff see a status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from django.http import HttpRequest


class ChallengeNotFound(LookupError):
    """No registered source holds the requested code challenge (or that version of it)."""


class Challenge(Protocol):
    """What grading needs of one code challenge of one content version (immutable once stored)."""

    slug: str
    version: str
    points: float
    checks_source: str
    solution_source: str
    starter_code: str  # what students start from: the checks it already passes earn nothing
    timeout_s: float


# "full": the result; "progress": that it was received and graded, nothing about how it did; None: a 404.
Access = Literal["full", "progress"] | None

_get: Callable[[str, str | None], Challenge] | None = None
_current: Callable[[], Iterable[Challenge]] | None = None
_access: Callable[[HttpRequest, Any], Access] | None = None


def register(
    *,
    get: Callable[[str, str | None], Challenge],
    current: Callable[[], Iterable[Challenge]],
    access: Callable[[HttpRequest, Any], Access],
) -> None:
    """Called once by the owning app's ready(). `get(slug, version)` (None: the current version) raises
    ChallengeNotFound; `access(request, submission)` decides what the status endpoint shows."""
    global _get, _current, _access
    _get, _current, _access = get, current, access


def get_challenge(slug: str, version: str | None = None) -> Challenge:
    if _get is None:
        raise ChallengeNotFound("no challenges are registered with grading")
    return _get(slug, version)


def current_challenges() -> list[Challenge]:
    return list(_current()) if _current is not None else []


def access(request: HttpRequest, submission: Any) -> Access:
    return _access(request, submission) if _access is not None else None
