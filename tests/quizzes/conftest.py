"""Fixtures for the challenge-set tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from lti_tool.gradebook import services as gradebook


class Clock:
    """A controllable 'now' passed explicitly to the services (they take now=...)."""

    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)

    def advance(self, seconds: float) -> Any:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorded_scores(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every call to the gradebook's record_score, recorded and then passed through to the real function."""
    calls: list[dict[str, Any]] = []
    real = gradebook.record_score

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(gradebook, "record_score", spy)
    return calls
