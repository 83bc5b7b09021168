"""Submitting, the once-only result, the sweeper and refusing to grade without the sandbox (PostgreSQL, Redis)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from grading import services
from grading.models import CodeSubmission
from grading.signals import submission_graded
from tests.factories import LtiUserFactory
from tests.grading.factories import CodeSubmissionFactory

Status = CodeSubmission.Status


@pytest.fixture
def broker():
    """The real Redis broker database of this test run, emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


def queued_ids(broker) -> list[str]:
    """Submission ids of the grading messages waiting in the `gpu` queue."""
    ids = []
    for raw in broker.lrange("gpu", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "grading.tasks.grade_submission"
        ids.append(message["headers"]["argsrepr"].strip("[]()',\""))
    return ids


@pytest.fixture
def graded_signals():
    received = []

    def receiver(sender, submission, **kwargs):
        received.append((submission.pk, submission.status, submission.score))

    submission_graded.connect(receiver, dispatch_uid="test-graded")
    yield received
    submission_graded.disconnect(dispatch_uid="test-graded")


@pytest.mark.django_db
def test_submit_code_stores_first_and_queues_on_commit_on_the_gpu_queue(broker, django_capture_on_commit_callbacks):
    student = LtiUserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        submission = services.submit_code(challenge_slug="resnet-block-stride", code="x = 1\n", lti_user=student)
        assert queued_ids(broker) == []  # nothing leaves before the row is committed

    stored = CodeSubmission.objects.get(pk=submission.pk)
    assert stored.status == Status.QUEUED and stored.lti_user == student and stored.code == "x = 1\n"
    assert stored.challenge_version  # the version of the set the checks will come from
    assert queued_ids(broker) == [str(submission.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "code", "message"),
    [
        pytest.param("resnet-block-stride", "", "empty", id="empty"),
        pytest.param("resnet-block-stride", "   \n", "empty", id="blank"),
        pytest.param("resnet-block-stride", "x" * (65_536 + 1), "larger than 64 KiB", id="too-large"),
        pytest.param("resnet-block-stride", "a = 1\x00", "NUL", id="nul"),
        pytest.param("resnet-block-stride", "a = '\ud800'", "not text", id="lone-surrogate"),
        pytest.param("no-such-challenge", "x = 1", "Unknown code challenge", id="unknown-slug"),
        pytest.param("resnet-" + "x" * 200, "x = 1", "Unknown code challenge", id="huge-slug"),
    ],
)
def test_bad_submissions_are_refused_and_nothing_is_stored(broker, slug, code, message):
    with pytest.raises(ValidationError, match=message):
        services.submit_code(challenge_slug=slug, code=code)
    assert CodeSubmission.objects.count() == 0
    assert queued_ids(broker) == []


@pytest.fixture
def other_app_challenges(monkeypatch):
    """grading with challenges registered by an app other than quizzes (its registration is restored after)."""
    from types import SimpleNamespace

    from grading import challenges

    for name in ("_get", "_current", "_access"):
        monkeypatch.setattr(challenges, name, getattr(challenges, name))
    known = SimpleNamespace(slug="elsewhere", version="v7", points=3.0, checks_source="", solution_source="",
                            timeout_s=5.0)

    def get(slug, version):
        if slug != known.slug or version not in {None, known.version}:
            raise challenges.ChallengeNotFound(slug)
        return known

    challenges.register(get=get, current=lambda: [known], access=lambda request, submission: None)
    return known


@pytest.mark.django_db
def test_grading_takes_its_challenges_from_whichever_app_registered_them(broker, other_app_challenges):
    submission = services.submit_code(challenge_slug="elsewhere", code="x = 1\n")

    assert (submission.challenge_slug, submission.challenge_version) == ("elsewhere", "v7")
    with pytest.raises(ValidationError, match="Unknown code challenge"):
        services.submit_code(challenge_slug="resnet-block-stride", code="x = 1\n")  # quizzes' own: not registered
    assert CodeSubmission.objects.count() == 1


@pytest.mark.django_db
def test_a_result_is_written_once_and_signalled_once(graded_signals):
    sub = CodeSubmissionFactory()
    assert services.begin_grading(sub.pk, worker="w1").status == Status.RUNNING

    first = services.finish_grading(sub.pk, status=Status.GRADED, score=2.0, max_score=2.0, checks=[])
    second = services.finish_grading(sub.pk, status=Status.FAILED, score=0.0, max_score=2.0, feedback="late")

    assert (first, second) == (True, False)
    sub.refresh_from_db()
    assert sub.status == Status.GRADED and sub.score == 2.0 and sub.feedback == ""
    assert graded_signals == [(sub.pk, Status.GRADED, 2.0)]
    assert sub.queued_at <= sub.started_at <= sub.finished_at
    # A second delivery of a finished submission does nothing at all.
    assert services.begin_grading(sub.pk) is None
    assert services.grade_submission_now(sub.pk) is None
    sub.refresh_from_db()
    assert sub.deliveries == 1 and sub.status == Status.GRADED


@pytest.mark.django_db
def test_each_delivery_is_counted(graded_signals):
    sub = CodeSubmissionFactory()
    services.begin_grading(sub.pk, worker="w1")
    services.begin_grading(sub.pk, worker="w2")  # the first worker died; the message came again
    sub.refresh_from_db()
    assert sub.deliveries == 2 and sub.worker == "w2" and sub.status == Status.RUNNING
    assert graded_signals == []


@pytest.mark.django_db
def test_grading_is_refused_without_bubblewrap_and_the_code_is_kept(settings, graded_signals):
    settings.GRADING_SANDBOX = "bwrap"
    settings.GRADING_BWRAP_PATH = "/nonexistent/bwrap"
    from quizzes.content import get_code_challenge

    spec = get_code_challenge("resnet-block-stride")
    sub = CodeSubmissionFactory(challenge_version=spec.version)

    result = services.grade_submission_now(sub.pk)

    assert result.status == Status.ERROR and not result.is_final
    assert "bubblewrap" in result.feedback and "not installed" in result.feedback
    assert result.code == sub.code and result.deliveries == 0  # not a delivery: retried until bwrap is back
    assert graded_signals == []  # not a result: nothing is scored


@pytest.mark.django_db
def test_the_sweeper_requeues_lost_and_orphaned_submissions_only(broker, settings, clock):
    settings.GRADING_REQUEUE_AFTER_S = 60
    now = clock.now
    lost = CodeSubmissionFactory()
    fresh = CodeSubmissionFactory()
    orphaned = CodeSubmissionFactory(status=Status.RUNNING, deliveries=1)
    busy = CodeSubmissionFactory(status=Status.RUNNING, deliveries=1)
    errored = CodeSubmissionFactory(status=Status.ERROR)
    done = CodeSubmissionFactory(status=Status.GRADED, score=1.0, max_score=2.0)
    old = now - timedelta(hours=1)
    CodeSubmission.objects.filter(pk__in=[lost.pk, orphaned.pk, busy.pk, errored.pk, done.pk]).update(queued_at=old)
    CodeSubmission.objects.filter(pk=orphaned.pk).update(started_at=old)
    CodeSubmission.objects.filter(pk=busy.pk).update(started_at=now - timedelta(seconds=5))

    requeued = services.requeue_stale()

    assert set(requeued) == {str(lost.pk), str(orphaned.pk), str(errored.pk)}
    assert sorted(queued_ids(broker)) == sorted(requeued)
    assert str(fresh.pk) not in requeued and str(busy.pk) not in requeued and str(done.pk) not in requeued


@pytest.mark.django_db
def test_the_sweeper_gives_up_on_a_submission_that_killed_its_workers_again_and_again(broker, settings, graded_signals):
    settings.GRADING_MAX_DELIVERIES = 3
    sub = CodeSubmissionFactory(status=Status.RUNNING, deliveries=3)
    old = timezone.now() - timedelta(hours=1)
    CodeSubmission.objects.filter(pk=sub.pk).update(queued_at=old, started_at=old)

    assert services.requeue_stale() == []

    sub.refresh_from_db()
    assert sub.status == Status.FAILED and sub.score == 0.0
    assert "3 times" in sub.feedback
    assert graded_signals == [(sub.pk, Status.FAILED, 0.0)]
    assert queued_ids(broker) == []


@pytest.mark.django_db
def test_results_are_counted_in_the_metrics_after_commit(django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def count(status):
        return REGISTRY.get_sample_value("gradings_total", {"status": status}) or 0.0

    def latency_count():
        return REGISTRY.get_sample_value("grading_latency_seconds_count") or 0.0

    before, before_latency = count("graded"), latency_count()
    sub = CodeSubmissionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.finish_grading(sub.pk, status=Status.GRADED, score=1.0, max_score=2.0)
    assert count("graded") == before + 1
    assert latency_count() == before_latency + 1


@pytest.mark.django_db
def test_text_from_the_sandbox_that_postgresql_cannot_hold_is_stored_with_replacement_characters(graded_signals):
    """A NUL (or a lone surrogate from a JSON escape) in any text the sandbox produced is replaced by U+FFFD, a NaN
    in its artifacts by null: the result is written at once instead of failing every delivery."""
    sub = CodeSubmissionFactory()
    services.begin_grading(sub.pk, worker="w1")
    bad = "boom\x00boom\ud800"
    assert services.finish_grading(
        sub.pk, status=Status.FAILED, score=0.0, max_score=2.0, feedback=f"Your code raised RuntimeError: {bad}",
        checks=[{"name": bad, "passed": False, "points": 0.0, "max_points": 2.0, "feedback": bad}],
        artifacts={bad: [bad, {"k\x00": bad}], "curve": [1.0, float("nan"), float("inf")]},
    )
    sub.refresh_from_db()
    good = "boom\ufffdboom\ufffd"
    assert sub.status == Status.FAILED and sub.feedback == f"Your code raised RuntimeError: {good}"
    assert sub.checks == [{"name": good, "passed": False, "points": 0.0, "max_points": 2.0, "feedback": good}]
    assert sub.artifacts == {good: [good, {"k\ufffd": good}], "curve": [1.0, None, None]}
    assert graded_signals == [(sub.pk, Status.FAILED, 0.0)]

    other = CodeSubmissionFactory()
    services.mark_error(other.pk, "The GPU said \x00")
    other.refresh_from_db()
    assert other.status == Status.ERROR and other.feedback == "The GPU said \ufffd"
