"""The audit trail of instructor actions in a placement (overrides, reopens, extensions, accommodations, settings).

`record` is called by the verbs that change things, inside their transaction, so a change and its audit row commit
or roll back together. `before` and `after` are small JSON snapshots of the fields the action changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quizzes.models import Attempt, AuditEntry, Placement

Action = AuditEntry.Action


def _name(user: Any) -> str:
    return user.display_name[:300] if user is not None else ""


def record(
    placement: Placement,
    action: str,
    *,
    actor: Any,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    student: Any = None,
    attempt: Attempt | None = None,
    slug: str = "",
    note: str = "",
) -> AuditEntry:
    """Store one audit row: who (`actor`), when (`now`), what (`action`, about `student`/`attempt`/`slug`)."""
    if student is None and attempt is not None:
        student = attempt.lti_user
    return AuditEntry.objects.create(
        placement=placement,
        action=action,
        actor=actor,
        actor_name=_name(actor),
        student=student,
        student_name=_name(student),
        attempt=attempt,
        slug=slug,
        before=before,
        after=after,
        note=note[:1000],
        created_at=now,
    )


def when(moment: datetime | None) -> str | None:
    """A datetime in a snapshot (JSON): ISO 8601, or None."""
    return moment.isoformat() if moment is not None else None
