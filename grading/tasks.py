"""Celery tasks of the grading app. `grade_submission` runs on the `gpu` queue (see CELERY_TASK_ROUTES).

Delivery semantics: acks_late + reject_on_worker_lost (settings), so a worker that dies mid-grading leaves the
message to be delivered again; the task is idempotent by submission id (a finished submission is never graded or
written twice). The periodic `requeue_stale_submissions` re-enqueues what the broker lost.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)


@shared_task(name="grading.tasks.grade_submission", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def grade_submission(submission_id: str) -> str | None:
    """Grade one stored submission in a warm sandbox; a repeated delivery of a finished one does nothing."""
    from grading.services import grade_submission_now

    submission = grade_submission_now(submission_id)
    return submission.status if submission is not None else None


@shared_task(name="grading.tasks.requeue_stale_submissions", ignore_result=True)
def requeue_stale_submissions() -> int:
    """The sweeper (beat, every 30 s): the database is the truth, the broker is not."""
    from grading.services import requeue_stale

    return len(requeue_stale())


@worker_ready.connect
def _warm_pool_on_start(sender=None, **kwargs) -> None:  # noqa: ANN001
    """Workers consuming the `gpu` queue start warming their sandboxes (and reference runs) at once."""
    try:
        queues = {q.name for q in sender.task_consumer.queues}
    except AttributeError:
        queues = set()
    if queues and "gpu" not in queues:
        return
    pool_cls = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if "prefork" in f"{getattr(pool_cls, '__module__', '')}.{getattr(pool_cls, '__name__', '')}":
        return  # the parent never grades; each child starts its own pool on its first grading
    try:
        from grading.pool import get_pool

        get_pool()
    except Exception:  # noqa: BLE001 - grading reports its own errors per submission
        log.exception("could not start the grading pool")


@worker_shutdown.connect
def _close_pool(**kwargs) -> None:  # noqa: ANN003
    from grading.pool import reset_pool

    reset_pool()
