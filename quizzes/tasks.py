"""Periodic tasks of the challenge set (scheduled in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="quizzes.tasks.finalise_expired_attempts")
def finalise_expired_attempts() -> int:
    """Finish attempts whose time is up (abandoned ones included) so they are scored and reach the gradebook."""
    from quizzes import services

    return services.finalise_expired_attempts()
