"""Fixtures of the grading tests: one pool of real bubblewrap sandboxes shared by the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grading.models import CodeSubmission
from grading.pool import WarmPool
from grading.sandbox import SandboxConfig

CODE_DIR = Path(__file__).resolve().parents[2] / "quizzes" / "content" / "resnet" / "code"
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
# Short limits keep the hostile cases (endless loops, sleeps) quick; the product defaults are larger.
TEST_TIMEOUT_S = 6.0
# (a CUDA context needs more host memory than a CPU-only torch process)
TEST_MEMORY_MB = 4096 if os.path.exists("/dev/nvidiactl") else 1024


def solution(slug: str) -> str:
    return (CODE_DIR / slug / "solution.py").read_text()


def starter(slug: str) -> str:
    return (CODE_DIR / slug / "starter.py").read_text()


def submission_file(name: str) -> str:
    return (SUBMISSIONS / name).read_text()


@pytest.fixture(scope="session")
def grading_pool():
    """Two warm sandboxes at a time (refilled in the background while a test runs), real bubblewrap."""
    pool = WarmPool(
        2,
        lambda: SandboxConfig.from_settings(timeout_s=TEST_TIMEOUT_S, memory_mb=TEST_MEMORY_MB),
        defer_refill_while_busy=False,
    )
    pool.start()
    yield pool
    pool.close()


@pytest.fixture
def grade(db, grading_pool, settings):
    """grade(slug, code) -> the CodeSubmission after the real grading path (sandbox + judge + result)."""
    from grading.services import grade_submission_now
    from quizzes.content import get_code_challenge

    settings.GRADING_TIMEOUT_S = TEST_TIMEOUT_S
    settings.GRADING_MEMORY_MB = TEST_MEMORY_MB

    def _grade(slug: str, code: str) -> CodeSubmission:
        spec = get_code_challenge(slug)
        sub = CodeSubmission.objects.create(challenge_slug=slug, challenge_version=spec.version, code=code)
        result = grade_submission_now(sub.pk, pool=grading_pool, worker="pytest")
        assert result is not None
        return result

    return _grade


def check(submission: CodeSubmission, name_part: str) -> dict:
    """The one check whose name contains `name_part`."""
    matches = [c for c in submission.checks if name_part.lower() in c["name"].lower()]
    assert len(matches) == 1, f"{name_part!r} matches {[c['name'] for c in submission.checks]}"
    return matches[0]
