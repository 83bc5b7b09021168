"""The tool's one source of the current time, so that tests and scripts can move it.

The one way to fake time: code whose behaviour depends on when it runs reads `clock.now()` (always through the
module, `from config import clock`, so that a replacement is seen); tests move it with the `clock` fixture
(tests/conftest.py: frozen at the start of the test, moved only by `clock.advance(seconds)`); a script replaces
`clock.now` (scripts/gradebook_reliability.py). Not `now=` parameters, not patching `django.utils.timezone`.
The development LMS keeps real time: it stands for another server, with its own clock; so do the times in the AGS
client's signed assertion, which that server judges (the one test of a skewed server clock patches `ags.time`).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """The current time (aware, UTC)."""
    return timezone.now()
