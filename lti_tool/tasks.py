"""Celery tasks of `lti_tool` (autodiscovered). The gradebook's live in lti_tool/gradebook/tasks.py."""

from lti_tool.gradebook.tasks import deliver_due_scores, deliver_score

__all__ = ["deliver_due_scores", "deliver_score"]
