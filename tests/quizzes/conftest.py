"""Fixtures for the challenge-set tests."""

from __future__ import annotations

from typing import Any

import pytest

from lti_tool.gradebook import services as gradebook


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
