"""Read-only views of the data for pages and exports (no changes here; verbs live in services.py).

Everything a student page may show is decided here, in one place: answer keys, explanations and grading details
only appear in a question's view model once the rules allow them to be revealed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Exists, OuterRef, Prefetch, Q, prefetch_related_objects
from django.http import HttpRequest
from django.utils import timezone

from grading.challenges import Access
from lti_tool.sessions import SESSION_KEY
from quizzes import content, services
from quizzes.models import Accommodation, Answer, Attempt, CodeAnswer, Placement, QuestionState

if TYPE_CHECKING:
    from lti_tool.models import LtiUser


def feedback_visible(attempt: Attempt) -> bool:
    """Whether the student may see if an answer was correct (exam: only after the attempt closed)."""
    return attempt.placement.rules.get("feedback", "immediate") == "immediate" or attempt.is_finished


def submission_access(request: HttpRequest, submission: Any) -> Access:
    """What grading's status endpoint shows this browser session of a code submission (registered with grading in
    QuizzesConfig.ready()): "full" for an instructor launch of the course it was made in (a quiz answer's course,
    else any course its student belongs to) and for its student unless the quiz holds results back ("progress"),
    None (a 404) for anyone else."""
    from lti_tool.models import Membership

    if submission.lti_user_id is None:
        return None
    launches = list(request.session.get(SESSION_KEY, {}).values())
    staff_contexts = [launch.get("context_pk") for launch in launches if launch.get("is_staff")]
    answer = CodeAnswer.objects.filter(submission_id=submission.pk).select_related(
        "state__attempt__placement__resource_link"
    ).first()
    if staff_contexts:
        # A student in two courses of one registration: a quiz answer is for the staff of its own course only.
        if answer is not None:
            if answer.state.attempt.placement.resource_link.context_id in staff_contexts:
                return "full"
        elif Membership.objects.filter(context_id__in=staff_contexts, lti_user_id=submission.lti_user_id).exists():
            return "full"
    if any(launch.get("lti_user_pk") == submission.lti_user_id for launch in launches):
        return "full" if answer is None or feedback_visible(answer.state.attempt) else "progress"
    return None


def _being_graded(state: QuestionState) -> bool:
    # all(): uses the prefetched code answers where the caller loaded them (question_views), one query otherwise.
    return any(answer.is_pending for answer in state.code_answers.all())


def answer_revealed(attempt: Attempt, state: QuestionState) -> bool:
    """Whether the correct answer and explanation may be shown: never before the question is finished."""
    if state.is_open and not attempt.is_finished:
        return False
    if state.is_open and _being_graded(state):
        return False  # still being graded
    if attempt.placement.rules.get("reveal_answers", "after_question") == "after_close":
        return attempt.is_finished
    return True


def status_label(attempt: Attempt, state: QuestionState, *, for_staff: bool = False) -> str:
    """The status shown for a question; students do not see correctness while feedback is held back."""
    if state.is_open:
        if state.first_shown_at is None:
            return "Not started"
        return "Being graded" if _being_graded(state) else "Open"
    if not for_staff and not feedback_visible(attempt):
        return "Answered"
    if state.status == QuestionState.Status.EXPIRED:
        ran_out = state.deadline is not None and state.finished_at is not None and state.finished_at >= state.deadline
        if attempt.finish_reason == Attempt.FinishReason.SUBMITTED and not ran_out:
            return "Not answered" if state.attempts_used == 0 else "Not completed"
        if state.first_shown_at is None:
            return "Not answered"
    return state.get_status_display()


def time_used_s(state: QuestionState, now: datetime | None = None) -> int | None:
    """Seconds between a question's first show and its end (its deadline at most)."""
    if state.first_shown_at is None:
        return None
    end = state.finished_at or state.attempt.finished_at or now or timezone.now()
    if state.deadline is not None:
        end = min(end, state.deadline)
    return max(0, int((end - state.first_shown_at).total_seconds()))


def attempt_time_used_s(attempt: Attempt, now: datetime | None = None) -> int:
    end = attempt.finished_at or now or timezone.now()
    return max(0, int((end - attempt.started_at).total_seconds()))


@dataclass(frozen=True)
class ShownOption:
    """An option as one attempt shows it: re-lettered in display order, submitted as its opaque per-attempt id."""

    letter: str
    option_id: str
    key: str  # the content's key: for instructors' pages and statistics, never rendered on a student's page
    text: str


OPTION_LETTERS = "ABCDEFGH"  # the schema allows at most eight options


def shown_options(state: QuestionState, challenge: dict[str, Any]) -> list[ShownOption]:
    """A multiple-choice question's options in the order this attempt shows them (stored when it started); a state
    stored without one (none should remain after migration 0002) shows the content's order under the keys."""
    texts = {option["key"]: option["text"] for option in challenge.get("options") or []}
    order = state.presentation.get("options") or [[key, key] for key in texts]
    letters = {key: OPTION_LETTERS[index] for index, (key, _id) in enumerate(order)}
    return [
        ShownOption(letters[key], option_id, key, content.cite_options(texts.get(key, ""), letters))
        for key, option_id in order
    ]


@dataclass
class QuestionView:
    """Everything a student page shows about one challenge. Answer keys appear only when `revealed`."""

    state: QuestionState
    challenge: dict[str, Any]
    status: str
    remaining_s: int | None
    deadline: datetime | None
    attempts_allowed: int | None
    attempts_left: int | None
    can_answer: bool
    hints_enabled: bool
    hint_text: str
    hint_cost: str
    feedback_visible: bool
    revealed: bool
    answer_key: str = ""
    answer_letter: str = ""
    answer_text: str = ""
    explanation: str = ""
    prompt: str = ""
    options: list[ShownOption] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    code_answers: list[CodeAnswer] = field(default_factory=list)
    pending: bool = False
    starter_code: str = ""
    scoring_rule: str = ""

    @property
    def slug(self) -> str:
        return self.state.slug


# What a question view reads of a state's answers, loaded in one query per relation for any number of states.
_ANSWER_PREFETCHES = (
    "answers",
    Prefetch("code_answers", queryset=CodeAnswer.objects.select_related("submission")),
)


def question_views(attempt: Attempt, now: datetime | None = None) -> list[QuestionView]:
    """Every challenge of an attempt, in order, with a fixed number of queries (the overview and summary pages)."""
    now = now or timezone.now()
    states = list(attempt.states.order_by("position").prefetch_related(*_ANSWER_PREFETCHES))
    accommodation = Accommodation.objects.filter(placement=attempt.placement, lti_user_id=attempt.lti_user_id).first()
    return [question_view(attempt, state, now, accommodation=accommodation) for state in states]


_UNSET: Any = object()


def question_view(
    attempt: Attempt, state: QuestionState, now: datetime | None = None, *, accommodation: Any = _UNSET
) -> QuestionView:
    """The student's view of one challenge under the placement's rules."""
    now = now or timezone.now()
    placement = attempt.placement
    challenge = placement.challenge_set.challenge(state.slug) or {}
    if accommodation is _UNSET:
        accommodation = Accommodation.objects.filter(placement=placement, lti_user_id=attempt.lti_user_id).first()
    extra = (accommodation.extra_attempts if accommodation else 0) + state.extra_attempts
    allowed = services.attempts_allowed(placement.rules, challenge, extra)
    left = None if allowed is None else max(0, allowed - state.attempts_used)
    prefetch_related_objects([state], *_ANSWER_PREFETCHES)  # nothing to do where question_views loaded them
    code_answers = list(state.code_answers.all())
    pending = _being_graded(state)
    clock = services.question_clock(state, now)
    visible = feedback_visible(attempt)
    revealed = answer_revealed(attempt, state)
    hints_mode = placement.rules.get("hints", "free")
    penalty = float(placement.credit_policy.get("hint_penalty", 0.0))
    hint_cost = ""
    if hints_mode == "penalised" and penalty > 0:
        cost = penalty * state.max_points
        unit = "point" if state.max_points == 1 else "points"
        hint_cost = f"Using the hint costs {cost:g} of this question's {state.max_points:g} {unit}."
    options = shown_options(state, challenge) if challenge.get("kind") == "choice" else []
    letters = {option.key: option.letter for option in options}
    answers = list(state.answers.all())
    for answer in answers:
        answer.letter = letters.get(answer.choice, answer.choice)  # type: ignore[attr-defined]
    view = QuestionView(
        state=state,
        challenge=challenge,
        status=status_label(attempt, state),
        remaining_s=clock.remaining_s,
        deadline=clock.deadline,
        attempts_allowed=allowed,
        attempts_left=left,
        can_answer=(
            not attempt.is_finished
            and state.is_open
            and state.first_shown_at is not None
            and (left is None or left > 0)
            and not pending
            and (clock.remaining_s is None or clock.remaining_s > 0)
        ),
        hints_enabled=hints_mode != "off" and bool(challenge.get("hint")),
        hint_text=content.cite_options(challenge.get("hint", ""), letters) if state.hint_used else "",
        hint_cost=hint_cost,
        feedback_visible=visible,
        revealed=revealed,
        prompt=content.cite_options(challenge.get("prompt", ""), letters),
        options=options,
        answers=answers,
        code_answers=code_answers,
        pending=pending,
        starter_code=challenge.get("starter_code", ""),
        scoring_rule=scoring_rule(placement, state, challenge, allowed, hint_cost),
    )
    if revealed:
        view.explanation = content.cite_options(challenge.get("explanation", ""), letters)
        if challenge.get("kind") == "choice":
            correct = next(o for o in options if o.key == challenge["answer"])
            view.answer_key, view.answer_letter, view.answer_text = correct.key, correct.letter, correct.text
    return view


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def scoring_rule(
    placement: Placement, state: QuestionState, challenge: dict[str, Any], allowed: int | None, hint_cost: str
) -> str:
    """How a question is scored, in words, shown before the student answers: what each attempt is worth, which
    submission counts, what the hint costs (the credit policy snapshot of the placement, as services applies it)."""
    multipliers = [float(m) for m in placement.credit_policy.get("attempt_multipliers") or [1.0]]
    count = len(multipliers) if allowed is None else min(allowed, len(multipliers))
    shares = []
    for index in range(count):
        later = index == count - 1 and (allowed is None or allowed > count)
        attempts = f"attempt {index + 1}" + (" and later" if later else "")
        shares.append(f"{_percent(multipliers[index])} on {attempts}")
    if len(set(multipliers[:count])) == 1:
        shares = [_percent(multipliers[0]) + ("" if allowed == 1 else " on every attempt")]
    unit = "point" if state.max_points == 1 else "points"
    if challenge.get("kind") == "code":
        rule = (f"Worth {state.max_points:g} {unit}, shared among the hidden checks that the starter code does not "
                f"already pass (the unchanged starter scores 0). A submission earns its share of the checks at "
                f"{', '.join(shares)}; your best submission counts.")
    else:
        rule = f"Worth {state.max_points:g} {unit}. A right answer earns {', '.join(shares)}."
    return f"{rule} {hint_cost}".strip()


def code_result_note(placement: Placement, state: QuestionState, code_answer: CodeAnswer) -> str:
    """Why a graded submission earned its points: its share of the checks, what its attempt is worth, the hint, and
    (when an earlier one did better) which submission counts, so a full pass never reads lower without a reason."""
    submission = code_answer.submission
    share = (submission.score or 0.0) / submission.max_score if submission.max_score else 0.0
    parts = ["All checks passed" if share >= 1.0 - 1e-9 else f"{_percent(share)} of the checks' points"]
    multiplier = services.credit_multiplier(placement.credit_policy, code_answer.attempt_number)
    if multiplier < 1.0:
        parts.append(f"attempt {code_answer.attempt_number} earns {_percent(multiplier)} of the points")
    penalty = float(placement.credit_policy.get("hint_penalty", 0.0))
    if state.hint_used and placement.rules.get("hints") == "penalised" and penalty > 0:
        parts.append(f"the hint cost {penalty * state.max_points:g}")
    note = "; ".join(parts) + "."
    graded = [a for a in state.code_answers.all() if a.points is not None]
    best = max(graded, key=lambda a: (a.points, -a.attempt_number), default=None)
    if best is not None and best.pk != code_answer.pk and best.points > (code_answer.points or 0.0):
        note += (f" Your best submission, {best.points:.2f} points from attempt {best.attempt_number}, is what "
                 "counts for this question.")
    return note


def current_attempt(placement: Placement, lti_user_id: int) -> Attempt | None:
    """The student's open attempt, else their latest finished one, else None."""
    attempts = Attempt.objects.filter(placement=placement, lti_user_id=lti_user_id).select_related(
        "placement__challenge_set", "lti_user"
    )
    return attempts.filter(finished_at__isnull=True).first() or attempts.order_by("-number").first()


# --- Instructor views -------------------------------------------------------------------------------------------


def course_student(
    placement: Placement, lti_user_pk: int, *, registration_pk: int, vouched_sub: str | None = None
) -> LtiUser | None:
    """The LtiUser `lti_user_pk` if they belong to the placement's course, else None.

    One LMS registration (a Canvas developer key) serves every course of an institution, so being a user of the
    registration says nothing: they must be a member of the course (from a launch or the roster), have an attempt
    here, or be the student a submission-review launch of this link names (`vouched_sub`). Every staff page about
    one student resolves them here.
    """
    from lti_tool.models import LtiUser, Membership

    member = Membership.objects.filter(context_id=placement.resource_link.context_id, lti_user=OuterRef("pk"))
    in_course = Q(Exists(member)) | Q(Exists(Attempt.objects.filter(placement=placement, lti_user=OuterRef("pk"))))
    if vouched_sub:
        in_course |= Q(sub=vouched_sub)
    return LtiUser.objects.filter(in_course, pk=lti_user_pk, registration_id=registration_pk).first()


@dataclass
class ResultCell:
    state: QuestionState | None
    time_used_s: int | None
    label: str = ""


@dataclass
class ResultRow:
    attempt: Attempt
    cells: list[ResultCell]
    time_used_s: int
    accommodation: Accommodation | None


def latest_attempts(placement: Placement) -> list[Attempt]:
    """Each student's latest attempt, with states prefetched, ordered by name."""
    attempts = (
        Attempt.objects.filter(placement=placement)
        .select_related("lti_user", "placement__challenge_set")
        .prefetch_related(
            Prefetch("states", queryset=QuestionState.objects.order_by("position").prefetch_related("code_answers"))
        )
        .order_by("lti_user_id", "-number")
    )
    latest: dict[int, Attempt] = {}
    for attempt in attempts:
        latest.setdefault(attempt.lti_user_id, attempt)
    return sorted(latest.values(), key=lambda a: (a.lti_user.display_name.lower(), a.lti_user_id))


def not_started(placement: Placement) -> list[Any]:
    """The course's students (from launches and the LMS roster) who have no attempt in this placement, by name."""
    from lti_tool.models import LtiUser

    started = Attempt.objects.filter(placement=placement).values("lti_user_id")
    students = LtiUser.objects.filter(
        memberships__context_id=placement.resource_link.context_id, memberships__is_learner=True
    ).exclude(pk__in=started)
    return sorted(students.distinct(), key=lambda user: (user.display_name.lower(), user.pk))


def results_table(placement: Placement, now: datetime | None = None) -> list[ResultRow]:
    now = now or timezone.now()
    accommodations = {a.lti_user_id: a for a in Accommodation.objects.filter(placement=placement)}
    rows = []
    for attempt in latest_attempts(placement):
        by_slug = {s.slug: s for s in attempt.states.all()}
        cells = []
        for slug in placement.challenge_slugs:
            state = by_slug.get(slug)
            if state is not None:
                state.attempt = attempt
            label = status_label(attempt, state, for_staff=True) if state else ""
            cells.append(ResultCell(state, time_used_s(state, now) if state else None, label))
        used = attempt_time_used_s(attempt, now)
        rows.append(ResultRow(attempt, cells, used, accommodations.get(attempt.lti_user_id)))
    return rows


@dataclass
class ChallengeStats:
    slug: str
    title: str
    kind: str
    students: int
    correct: int
    average_time_s: int | None
    most_chosen_wrong: str
    most_chosen_wrong_count: int

    @property
    def correct_rate(self) -> float | None:
        return self.correct / self.students if self.students else None


def challenge_stats(placement: Placement, now: datetime | None = None) -> list[ChallengeStats]:
    """Per challenge, over each student's latest attempt: correct rate, average time, most chosen wrong option."""
    now = now or timezone.now()
    attempts = latest_attempts(placement)
    attempt_ids = [a.pk for a in attempts]
    wrong = Counter(
        Answer.objects.filter(state__attempt_id__in=attempt_ids, correct=False).values_list("state__slug", "choice")
    )
    stats = []
    for slug in placement.challenge_slugs:
        challenge = placement.challenge_set.challenge(slug) or {"title": slug, "kind": "choice"}
        states = []
        for attempt in attempts:
            for state in attempt.states.all():
                if state.slug == slug and state.first_shown_at is not None:
                    state.attempt = attempt
                    states.append(state)
        times = [t for t in (time_used_s(s, now) for s in states if not s.is_open) if t is not None]
        choices = [(choice, n) for (s, choice), n in wrong.items() if s == slug]
        choices.sort(key=lambda item: (-item[1], item[0]))
        top_choice, top_count = choices[0] if choices else ("", 0)
        stats.append(
            ChallengeStats(
                slug=slug,
                title=challenge["title"],
                kind=challenge["kind"],
                students=len(states),
                correct=sum(1 for s in states if s.status == QuestionState.Status.CORRECT),
                average_time_s=round(sum(times) / len(times)) if times else None,
                most_chosen_wrong=top_choice,
                most_chosen_wrong_count=top_count,
            )
        )
    return stats


def student_history(placement: Placement, lti_user_id: int) -> list[Attempt]:
    """Every attempt of one student with answers and code submissions (for the instructor)."""
    return list(
        Attempt.objects.filter(placement=placement, lti_user_id=lti_user_id)
        .select_related("lti_user", "placement__challenge_set")
        .prefetch_related(
            Prefetch("states", queryset=QuestionState.objects.order_by("position")),
            "states__answers",
            Prefetch("states__code_answers", queryset=CodeAnswer.objects.select_related("submission")),
        )
        .order_by("number")
    )


CSV_HEADER = [
    "student",
    "email",
    "lti_sub",
    "attempt",
    "attempt_started",
    "attempt_finished",
    "attempt_score",
    "attempt_max_score",
    "badge",
    "challenge",
    "status",
    "points",
    "max_points",
    "attempts_used",
    "hint_used",
    "time_used_s",
    # Multiple choice, by the content's option keys (comparable across students whatever order each one saw):
    "choices",  # the keys answered, in attempt order, space-separated
    "option_order",  # the keys in the order this student saw them (lettered A, B, C... in that order)
]


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_rows(placement: Placement, now: datetime | None = None) -> list[list[Any]]:
    """One row per student attempt and challenge."""
    now = now or timezone.now()
    rows: list[list[Any]] = [CSV_HEADER]
    attempts = (
        Attempt.objects.filter(placement=placement)
        .select_related("lti_user")
        .prefetch_related(
            Prefetch(
                "states",
                queryset=QuestionState.objects.order_by("position").prefetch_related("code_answers", "answers"),
            )
        )
        .order_by("lti_user_id", "number")
    )
    for attempt in attempts:
        user = attempt.lti_user
        for state in attempt.states.all():
            state.attempt = attempt
            rows.append(
                [
                    _csv_safe(user.display_name),
                    _csv_safe(user.email),
                    _csv_safe(user.sub),
                    attempt.number,
                    attempt.started_at.isoformat(),
                    attempt.finished_at.isoformat() if attempt.finished_at else "",
                    attempt.score,
                    attempt.max_score,
                    attempt.badge,
                    state.slug,
                    state.status,
                    state.points,
                    state.max_points,
                    state.attempts_used,
                    "yes" if state.hint_used else "no",
                    time_used_s(state, now) if state.first_shown_at else "",
                    " ".join(answer.choice for answer in state.answers.all()),
                    "".join(str(key) for key, _id in state.presentation.get("options") or []),
                ]
            )
    return rows


def _curve_source(artifacts: Any) -> dict[str, Any] | None:
    if not isinstance(artifacts, dict):
        return None
    source = artifacts
    for key in ("loss_curves", "curves", "losses"):
        if isinstance(artifacts.get(key), dict):
            source = artifacts[key]
            break
    return source


def loss_curves(artifacts: dict[str, Any] | None) -> dict[str, list[float]] | None:
    """The plain/residual loss curves of a skip-gradient-experiment result, if the grader reported them.

    Accepts {"plain": [...], "residual": [...]} at the top level or under "loss_curves" (optionally in "series").
    """
    source = _curve_source(artifacts)
    if source is None:
        return None
    if isinstance(source.get("series"), dict):
        source = source["series"]
    curves = {}
    for name in ("plain", "residual"):
        values = source.get(name)
        if not isinstance(values, list) or not values:
            return None
        try:
            curves[name] = [float(v) for v in values[:2000]]
        except (TypeError, ValueError):
            return None
    return curves


def grad_norms(artifacts: dict[str, Any] | None) -> dict[str, float] | None:
    """First-layer gradient norms {"plain": ..., "residual": ...} reported with the curves, if any."""
    source = _curve_source(artifacts)
    if source is None:
        return None
    norms = source.get("grad_norms") if isinstance(source.get("grad_norms"), dict) else {
        "plain": source.get("plain_grad_norm"), "residual": source.get("residual_grad_norm")
    }
    try:
        return {name: float(norms[name]) for name in ("plain", "residual")}
    except (KeyError, TypeError, ValueError):
        return None


# --- Audit trail ------------------------------------------------------------------------------------------------


def audit_entries(placement: Placement) -> Any:
    """The placement's audit rows, newest first, with the attempt's number at hand."""
    return placement.audit_entries.select_related("attempt").order_by("-created_at", "-pk")


AUDIT_CSV_HEADER = [
    "when", "action", "by", "by_lti_sub", "student", "student_lti_sub", "attempt", "challenge", "before", "after",
    "note",
]


def audit_csv_rows(placement: Placement) -> list[list[Any]]:
    """One row per audit entry, oldest first; before/after as JSON text."""
    rows: list[list[Any]] = [AUDIT_CSV_HEADER]
    entries = placement.audit_entries.select_related("attempt", "actor", "student").order_by("created_at", "pk")
    for entry in entries:
        rows.append(
            [
                entry.created_at.isoformat(),
                entry.action,
                _csv_safe(entry.actor_name),
                _csv_safe(entry.actor.sub if entry.actor else ""),
                _csv_safe(entry.student_name),
                _csv_safe(entry.student.sub if entry.student else ""),
                entry.attempt.number if entry.attempt else "",
                entry.slug,
                _csv_safe(json.dumps(entry.before, sort_keys=True)),
                _csv_safe(json.dumps(entry.after, sort_keys=True)),
                _csv_safe(entry.note),
            ]
        )
    return rows
