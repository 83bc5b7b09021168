"""End to end with real Celery worker processes (`celery -A config worker -Q gpu,default --pool solo`), the Redis
broker and pytest-django's PostgreSQL test database: submit -> graded; a hostile submission leaves the worker
alive; a worker SIGKILLed mid-grading is replaced and the submission graded again; the sweeper re-queues a
submission whose broker message was lost."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from grading import services
from grading.models import CodeSubmission
from grading.tasks import requeue_stale_submissions
from tests.grading.conftest import solution
from tests.workers import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.sandbox]
SLUG = "resnet-block-stride"
WAIT_S = 300  # bounded; a busy shared 2-core machine needs a while to warm torch in a sandbox
WORKER_ENV = {"GRADING_POOL_SIZE": "1", "GRADING_TIMEOUT_S": "20", "GRADING_REQUEUE_AFTER_S": "1"}


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """start_worker() -> Worker; all are stopped before the database is flushed. The broker starts empty."""
    from quizzes.content import current_set

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    current_set()  # the challenge set is in the database before any worker looks for it
    workers: list[CeleryWorker] = []

    def start() -> CeleryWorker:
        workers.append(CeleryWorker(tmp_path, name="grading-test", env=WORKER_ENV))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def wait_for(submission: CodeSubmission, predicate, worker: CeleryWorker | None = None) -> CodeSubmission:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        submission.refresh_from_db()
        if predicate(submission):
            return submission
        if worker is not None and not worker.alive:
            pytest.fail(f"the worker died:\n{worker.log.read_text()[-3000:]}")
        time.sleep(0.2)
    log = worker.log.read_text()[-3000:] if worker else ""
    pytest.fail(f"timed out waiting on {submission.pk} (status {submission.status}):\n{log}")


def final(s: CodeSubmission) -> bool:
    return s.is_final


def test_submitted_code_is_graded_by_the_worker_which_survives_a_hostile_submission(start_worker):
    worker = start_worker()

    good = services.submit_code(challenge_slug=SLUG, code=solution(SLUG))
    good = wait_for(good, final, worker)
    assert good.status == CodeSubmission.Status.GRADED and good.score == good.max_score == 2.0
    assert good.deliveries == 1 and good.worker.startswith(f"{os.uname().nodename}:")
    assert good.queued_at <= good.started_at <= good.finished_at

    hostile = services.submit_code(
        challenge_slug=SLUG,
        code="import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.killpg(0, signal.SIGKILL)\n"
             "while True:\n    os.fork()\n",
    )
    hostile = wait_for(hostile, final, worker)
    assert hostile.status == CodeSubmission.Status.FAILED and hostile.score == 0.0
    assert worker.alive

    again = wait_for(services.submit_code(challenge_slug=SLUG, code=solution(SLUG)), final, worker)
    assert again.status == CodeSubmission.Status.GRADED and again.score == 2.0
    assert worker.alive

    # The broker lost this one (never enqueued): the sweeper, run by the worker, puts it back in the queue.
    lost = CodeSubmission.objects.create(challenge_slug=SLUG, challenge_version=good.challenge_version,
                                         code=solution(SLUG))
    CodeSubmission.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    requeue_stale_submissions.apply_async()
    lost = wait_for(lost, final, worker)
    assert lost.status == CodeSubmission.Status.GRADED and lost.deliveries == 1


def test_a_worker_killed_mid_grading_is_replaced_and_the_submission_graded_again(start_worker):
    first = start_worker()
    slow = solution(SLUG) + "\nimport time\ntime.sleep(4)\n"
    submission = services.submit_code(challenge_slug=SLUG, code=slow)
    submission = wait_for(submission, lambda s: s.status == CodeSubmission.Status.RUNNING, first)

    first.kill()
    submission.refresh_from_db()
    assert submission.status == CodeSubmission.Status.RUNNING and submission.deliveries == 1

    second = start_worker()
    # The sweeper finds it running on a dead worker (here: with no grace period) and re-queues it.
    assert services.requeue_stale(queued_after_s=0) == [str(submission.pk)]
    submission = wait_for(submission, final, second)
    assert submission.status == CodeSubmission.Status.GRADED and submission.score == 2.0
    assert submission.deliveries == 2
    assert second.alive
