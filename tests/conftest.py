"""Fixtures shared by the whole suite. Per-package fixtures live in tests/<package>/conftest.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from config import clock as tool_clock
from lti_tool.devlms import jose
from lti_tool.gradebook import ags


class Clock:
    """The time the tool reads (config.clock): frozen at the start of a test, moved only by advance()."""

    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The one way tests move time (see config/clock.py)."""
    fake = Clock()
    monkeypatch.setattr(tool_clock, "now", lambda: fake.now)
    return fake


@pytest.fixture
def dev_lms(live_server, transactional_db):
    """The development LMS as the LTI platform peer, served by the live server (see tests/lti_support.py).

    Starts with its seed data (course1/course2, student1..student5, instructor1, link1 with a 100-point column,
    link2 without one) and no tool: call `dev_lms.register_tool(style="canvas"|"moodle")` first.
    """
    from django.core.cache import cache

    from tests.lti_support import DevLms

    # The database is emptied between tests, the shared cache (Redis) is not: start from no cached keys, tokens
    # or launch state, as a fresh deployment would.
    cache.clear()
    jose._jwks_cache.clear()
    lms = DevLms(live_server.url)
    yield lms
    lms.clear_faults()
    jose._jwks_cache.clear()
    # Kept-alive connections to the live server would keep one of its threads (and a database session) busy.
    ags.close_connections()


@pytest.fixture
def tool_peer():
    """A minimal tool stand-in (JWKS over HTTP, signing) for testing the development LMS on its own."""
    from tests.lti_support import ToolPeer

    peer = ToolPeer()
    yield peer
    peer.close()
