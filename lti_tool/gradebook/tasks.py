"""Celery tasks of the gradebook outbox. Registered under `lti_tool.tasks.*` (the names the beat schedule uses)."""

from __future__ import annotations

from celery import shared_task

from lti_tool.gradebook import services


@shared_task(name="lti_tool.tasks.deliver_score", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_score(score_update_id: int) -> str:
    """Deliver one outbox row to the LMS (idempotent: a row that is no longer waiting is never sent again)."""
    return services.deliver_score_update(score_update_id)


@shared_task(name="lti_tool.tasks.deliver_due_scores", acks_late=True, ignore_result=True)
def deliver_due_scores() -> int:
    """The sweeper (beat, every 15 s): re-enqueue due rows whose message was lost, never sent, or whose worker
    died mid-delivery. The database is the truth, not the broker."""
    return services.enqueue_due_scores()


@shared_task(name="lti_tool.tasks.sync_roster", ignore_result=True)
def sync_roster(context_id: int) -> int | None:
    """Refresh a course's roster over NRPS (queued by an instructor's launch, at most hourly per course)."""
    return services.sync_roster_in_background(context_id)
