"""Challenge sets, placements, attempts and what happened in them.

The database keeps the full content of every version of a challenge set (`ChallengeSet`); a `Placement` pins one
version and a snapshot of its mode's rules, so editing the content files or the modes never changes attempts
already made. Clocks are deadlines stored on the server (`QuestionState.deadline`, `Attempt.closes_at`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q


class ChallengeSet(models.Model):
    """One version of a challenge set: the validated content (with its code files' text) and its content hash."""

    slug = models.SlugField(max_length=100)
    version = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    content = models.JSONField()
    # The version new placements get. Exactly one per slug (the last one loaded).
    is_current = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="uniq_challenge_set_version"),
            models.UniqueConstraint(fields=["slug"], condition=Q(is_current=True), name="one_current_challenge_set"),
        ]

    def __str__(self) -> str:
        return f"{self.slug}@{self.version}"

    @property
    def challenges(self) -> list[dict[str, Any]]:
        return self.content["challenges"]

    def challenge(self, slug: str) -> dict[str, Any] | None:
        """The content of one challenge in this version, or None."""
        return next((c for c in self.challenges if c["slug"] == slug), None)

    @property
    def badge_name(self) -> str:
        return (self.content.get("badge") or {}).get("name", "")


class PlacementConfig(models.Model):
    """Shared fields of a deep-linking draft and a placement: what to play and under which rules."""

    challenge_set = models.ForeignKey(ChallengeSet, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    # Ordered slugs of the challenges presented (multiple-choice and code).
    challenge_slugs = models.JSONField(default=list)
    mode_slug = models.SlugField(max_length=50)
    # A snapshot of the mode's rules when the placement was configured (modes.yaml may change later).
    rules = models.JSONField(default=dict)
    # The line item's scoreMaximum: the attempt's share of its maximum is scaled to this.
    points = models.FloatField(default=100.0)
    # {"attempt_multipliers": [1.0, 0.5], "hint_penalty": 0.1}
    credit_policy = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def is_graded(self) -> bool:
        return bool(self.rules.get("graded"))


class PlacementDraft(PlacementConfig):
    """A configuration made in the deep-linking form, sent to the LMS as custom {"placement": uuid}.

    The first launch of a resource link carrying that uuid creates the link's `Placement` from it (a course copy
    that keeps the custom parameter gets its own placement from the same draft).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    registration = models.ForeignKey("lti_tool.Registration", on_delete=models.CASCADE, related_name="+")
    context = models.ForeignKey("lti_tool.Context", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        "lti_tool.LtiUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.title} ({self.uuid})"


class Placement(PlacementConfig):
    """The challenge set as played behind one resource link."""

    resource_link = models.OneToOneField("lti_tool.ResourceLink", on_delete=models.CASCADE, related_name="placement")
    draft = models.ForeignKey(
        PlacementDraft, on_delete=models.SET_NULL, null=True, blank=True, related_name="placements"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.title} [{self.mode_slug}] on {self.resource_link}"


class Accommodation(models.Model):
    """Extra time (a multiplier of every limit) and/or extra attempts per question for one student."""

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="accommodations")
    lti_user = models.ForeignKey("lti_tool.LtiUser", on_delete=models.CASCADE, related_name="+")
    time_multiplier = models.FloatField(default=1.0)
    extra_attempts = models.PositiveIntegerField(default=0)
    granted_by = models.ForeignKey(
        "lti_tool.LtiUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["placement", "lti_user"], name="uniq_accommodation")]


class Attempt(models.Model):
    """One student's run through a placement's challenges."""

    class FinishReason(models.TextChoices):
        SUBMITTED = "submitted", "Finished by the student"
        COMPLETED = "completed", "Every challenge finished"
        EXPIRED = "expired", "Time ran out"
        ABANDONED = "abandoned", "Closed after inactivity"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="attempts")
    lti_user = models.ForeignKey("lti_tool.LtiUser", on_delete=models.CASCADE, related_name="quiz_attempts")
    number = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()
    # When the attempt closes by itself: the whole-set deadline (exam) or the inactivity limit (timed). None: never.
    closes_at = models.DateTimeField(null=True, blank=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices, blank=True)
    score = models.FloatField(default=0.0)
    max_score = models.FloatField(default=0.0)
    badge = models.CharField(max_length=100, blank=True)
    # Seconds an instructor added to the whole-set clock (extend, reopen); kept apart so an accommodation's
    # multiplier recomputes the clock without losing them.
    extra_time_s = models.FloatField(default=0.0)

    class Meta:
        ordering = ["placement_id", "lti_user_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["placement", "lti_user", "number"], name="uniq_attempt_number"),
            models.UniqueConstraint(
                fields=["placement", "lti_user"], condition=Q(finished_at__isnull=True), name="one_open_attempt"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.lti_user} on {self.placement_id}"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class QuestionState(models.Model):
    """The state of one challenge inside an attempt: its clock, attempts used, hint and points."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CORRECT = "correct", "Correct"
        EXHAUSTED = "exhausted", "No attempts left"
        EXPIRED = "expired", "Time ran out"

    class Kind(models.TextChoices):
        CHOICE = "choice", "Multiple choice"
        CODE = "code", "Code"

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="states")
    slug = models.SlugField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    position = models.PositiveIntegerField()
    first_shown_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts_used = models.PositiveIntegerField(default=0)
    hint_used = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    points = models.FloatField(default=0.0)
    max_points = models.FloatField(default=0.0)
    # Granted by an instructor reopening this question (on top of the accommodation's extra attempts).
    extra_attempts = models.PositiveIntegerField(default=0)
    # Seconds an instructor added to this question's own clock by reopening it (per-question timers).
    extra_time_s = models.FloatField(default=0.0)
    # An instructor's points for this question: `points` holds them while set, and regrades leave them alone.
    override_points = models.FloatField(null=True, blank=True)
    override_comment = models.CharField(max_length=1000, blank=True)
    # What this attempt shows of the challenge, fixed when the attempt starts so a reload, a second device and every
    # review show the same: {"seed": int, "options": [[content key, option id], ...] in display order}. The option
    # id is an opaque per-attempt value the browser submits (never the content's key or position). A generated
    # variant's choice can sit beside them under its own key.
    presentation = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["attempt_id", "position"]
        constraints = [models.UniqueConstraint(fields=["attempt", "slug"], name="uniq_question_state")]

    def __str__(self) -> str:
        return f"{self.slug} in {self.attempt_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Answer(models.Model):
    """One submitted choice to a multiple-choice question."""

    state = models.ForeignKey(QuestionState, on_delete=models.CASCADE, related_name="answers")
    choice = models.CharField(max_length=1)
    correct = models.BooleanField()
    attempt_number = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["state_id", "attempt_number"]
        constraints = [models.UniqueConstraint(fields=["state", "attempt_number"], name="uniq_answer_attempt")]


class CodeAnswer(models.Model):
    """One code submission to a code challenge; the grading app owns the submission and its result."""

    state = models.ForeignKey(QuestionState, on_delete=models.CASCADE, related_name="code_answers")
    submission = models.OneToOneField("grading.CodeSubmission", on_delete=models.PROTECT, related_name="quiz_answer")
    attempt_number = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()
    # Points this submission earned (credit policy applied); None while it is being graded.
    points = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["state_id", "attempt_number"]
        constraints = [models.UniqueConstraint(fields=["state", "attempt_number"], name="uniq_code_answer_attempt")]

    @property
    def is_pending(self) -> bool:
        return self.points is None


class AuditEntry(models.Model):
    """One instructor action in a placement: who, when, what, and the state before and after (JSON)."""

    class Action(models.TextChoices):
        OVERRIDE_POINTS = "override_points", "Points overridden"
        REMOVE_OVERRIDE = "remove_override", "Override removed"
        REOPEN_QUESTION = "reopen_question", "Question reopened"
        REOPEN_ATTEMPT = "reopen_attempt", "Attempt reopened"
        EXTEND_ATTEMPT = "extend_attempt", "Attempt clock extended"
        ACCOMMODATION = "accommodation", "Accommodation granted"
        SETTINGS = "settings", "Settings changed"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="audit_entries")
    # The rows outlive the people and attempts they name (a user removed from the tool keeps their name here).
    actor = models.ForeignKey(
        "lti_tool.LtiUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=300, blank=True)
    student = models.ForeignKey(
        "lti_tool.LtiUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    student_name = models.CharField(max_length=300, blank=True)
    attempt = models.ForeignKey(Attempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    slug = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_name} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each field the action changed."""
        keys = dict.fromkeys([*self.before, *self.after])
        return [(k, self.before.get(k), self.after.get(k)) for k in keys if self.before.get(k) != self.after.get(k)]
