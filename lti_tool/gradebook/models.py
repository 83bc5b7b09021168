"""The gradebook outbox: line items (gradebook columns) and score updates waiting for, or done with, delivery.

The database is the truth about what each student's grade should be in the LMS; Celery only carries the work of
delivering it. A `ScoreUpdate` row is written in the same transaction as the grade it reports and is delivered at
least once; the AGS timestamp it carries makes repeated deliveries harmless.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from lti_tool.models import LtiUser, ResourceLink

# The tag the tool puts on line items it creates or asks for in deep linking (find-or-create matches on it).
LINE_ITEM_TAG = "resnet-challenges"


class LineItem(models.Model):
    """A gradebook column in the LMS (AGS line item) that a resource link's scores go to."""

    resource_link = models.ForeignKey(ResourceLink, on_delete=models.CASCADE, related_name="line_items")
    # The line item's id, i.e. its URL (Moodle's carries `?type_id=N`, kept as is).
    url = models.URLField(max_length=1000)
    label = models.CharField(max_length=500, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    resource_id = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=255, blank=True, default=LINE_ITEM_TAG)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource_link", "tag"], name="uniq_line_item_per_link_tag")]

    def __str__(self) -> str:
        return self.label or self.url


class ScoreUpdate(models.Model):
    """One score change for one student in one placement, and the state of its delivery to the LMS.

    The newest row per (resource link, user) is the score the LMS should show; `timestamp` is strictly increasing
    per pair (millisecond precision, at least one second apart: Moodle compares whole seconds).
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting to be delivered"
        DELIVERED = "delivered", "Delivered"
        SUPERSEDED = "superseded", "Replaced by a newer score"
        REFUSED = "refused", "Refused by the LMS or given up"
        # Never sent on purpose: e.g. a Pending score to a Moodle-style platform, which would drop the grade.
        SKIPPED = "skipped", "Not sent (would do harm on this platform)"
        # Not sent: a teacher changed the grade in the LMS by hand and the policy keeps teachers' grades.
        KEPT = "kept", "Not sent (the LMS keeps a teacher's grade)"

    class ActivityProgress(models.TextChoices):
        INITIALIZED = "Initialized"
        STARTED = "Started"
        IN_PROGRESS = "InProgress"
        SUBMITTED = "Submitted"
        COMPLETED = "Completed"

    class GradingProgress(models.TextChoices):
        FULLY_GRADED = "FullyGraded"
        PENDING = "Pending"
        PENDING_MANUAL = "PendingManual"
        FAILED = "Failed"
        NOT_READY = "NotReady"

    resource_link = models.ForeignKey(ResourceLink, on_delete=models.CASCADE, related_name="score_updates")
    lti_user = models.ForeignKey(LtiUser, on_delete=models.CASCADE, related_name="score_updates")
    # Known once the line item is resolved (at the latest on the first delivery attempt).
    line_item = models.ForeignKey(
        LineItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="score_updates"
    )
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField()
    activity_progress = models.CharField(max_length=16, choices=ActivityProgress.choices)
    grading_progress = models.CharField(max_length=16, choices=GradingProgress.choices)
    comment = models.CharField(max_length=1000, blank=True)
    # The AGS timestamp: when the score changed. Re-sent unchanged on every retry of this row.
    timestamp = models.DateTimeField()
    # When the student handed in the work this score grades (finished the attempt); None for progress mid-attempt.
    # Canvas: the first delivered score of each submitted_at opens a submission with this time (lateness).
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Sent even over a grade a teacher changed by hand in the LMS (the instructor asked: "Send all grades again").
    overwrite_lms_grade = models.BooleanField(default=False)

    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's lease on the row while it talks to the LMS (no transaction stays open meanwhile).
    claim = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When a delivery task was last put on the broker for this row (the sweeper re-enqueues lost ones).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resource_link", "lti_user", "timestamp"], name="uniq_score_timestamp_per_link_user"
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="score_due_idx"),
            models.Index(fields=["resource_link", "lti_user", "-timestamp"], name="score_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lti_user} {self.score_given}/{self.score_maximum} {self.grading_progress} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.grading_progress == self.GradingProgress.FULLY_GRADED
