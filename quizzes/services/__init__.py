"""Domain verbs of the challenge set, one module per part: `placements` (configuration from deep linking or the
settings, the placement behind a link), `attempts` (start, show, answer, hint, code, finish; the clock applied),
`scoring` (score, badge, the gradebook), `accommodations`, `rules` (a mode's rules, deadlines) and `errors` (the
refusals views answer with). Each verb validates, then acts inside transaction.atomic. Callers use the names
gathered here (`services.submit_answer`); quizzes.actions builds on the parts' own helpers.
"""

from __future__ import annotations

from quizzes.services.accommodations import (  # noqa: F401
    MAX_EXTRA_ATTEMPTS,
    grant_accommodation,
)
from quizzes.services.attempts import (  # noqa: F401
    finalise_expired_attempts,
    finish_attempt,
    refresh_attempt,
    score_code_submission,
    show_question,
    start_attempt,
    submit_answer,
    submit_code,
    submit_option,
    take_hint,
)
from quizzes.services.errors import (  # noqa: F401
    InvalidInput,
    NotAllowed,
    NotFound,
    QuizError,
    Refused,
)
from quizzes.services.placements import (  # noqa: F401
    build_placement_config,
    create_placement_draft,
    resolve_placement,
    update_placement,
)
from quizzes.services.rules import (  # noqa: F401
    attempts_allowed,
    question_clock,
)
from quizzes.services.scoring import (  # noqa: F401
    credit_multiplier,
)
