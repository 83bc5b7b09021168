"""Code submissions: stored before anything is queued; the database is the truth, the broker is not."""

from __future__ import annotations

import uuid

from django.db import models


class CodeSubmission(models.Model):
    """One piece of student (or operator) code to grade against a code challenge's hidden checks.

    Independent of quizzes: `grade_file` creates submissions with no student. The quizzes app links its answers to
    submissions and learns the result from the `grading.signals.submission_graded` signal, sent inside the
    transaction that writes the result (once).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        GRADED = "graded", "Graded"
        FAILED = "failed", "Failed"  # the code crashed, timed out or broke the sandbox's rules: scored 0 with a reason
        ERROR = "error", "Grading error"  # our fault (sandbox unavailable, ...): not the student's; retried/regraded

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    challenge_slug = models.SlugField(max_length=100)
    # The content hash/version of the challenge set the checks come from: editing a set never changes old grades.
    challenge_version = models.CharField(max_length=64)
    code = models.TextField()
    lti_user = models.ForeignKey("lti_tool.LtiUser", on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(null=True, blank=True)
    # [{"name": ..., "passed": bool, "points": float, "max_points": float, "feedback": str}, ...]
    checks = models.JSONField(default=list, blank=True)
    # Extra results for the feedback page (e.g. loss curves of the skip-gradient experiment).
    artifacts = models.JSONField(default=dict, blank=True)
    feedback = models.TextField(blank=True)
    device = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # How many times a worker picked it up (a worker death re-delivers it).
    deliveries = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"{self.challenge_slug} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in {self.Status.GRADED, self.Status.FAILED}
