"""Gradebook verbs, one module per part: `outbox` (record a score; the one entry point other apps call, inside their
own `transaction.atomic`; the sweeper), `delivery` (send it to the LMS over AGS), `status` (the sync state in words
for instructors) and `roster` (NRPS roster syncs). Callers use the names gathered here (`services.record_score`).
"""

from __future__ import annotations

from lti_tool.gradebook.services.delivery import (  # noqa: F401
    backoff_delay,
    deliver_due_now,
    deliver_score_update,
    resolve_line_item,
)
from lti_tool.gradebook.services.outbox import (  # noqa: F401
    due_score_ids,
    enqueue_due_scores,
    is_moodle_style,
    outbox_counts,
    record_score,
    resend_all,
)
from lti_tool.gradebook.services.roster import (  # noqa: F401
    request_roster_sync,
    sync_roster,
    sync_roster_in_background,
)
from lti_tool.gradebook.services.status import (  # noqa: F401
    sync_status,
)
