"""`manage.py show_queues`: broker queue depths next to what the database says is outstanding (helper F's command)."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command
from django.test import override_settings
from kombu import Connection

from grading.models import CodeSubmission
from lti_tool.gradebook.models import ScoreUpdate
from tests.factories import LtiUserFactory, ResourceLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(settings):
    """The broker under a key prefix of its own (other tests' workers never touch these queues); yields a function
    that publishes n messages to a queue through kombu."""
    prefix = f"test-show-queues-{uuid.uuid4().hex[:8]}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}

    def publish(queue: str, n: int = 1) -> None:
        with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as c:
            simple = c.SimpleQueue(queue)
            for i in range(n):
                simple.put({"n": i})
            simple.close()

    yield publish
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _submission(status: str) -> CodeSubmission:
    return CodeSubmission.objects.create(
        challenge_slug="resnet-block-projection", challenge_version="v1", code="pass", status=status
    )


def _score(state: str) -> ScoreUpdate:
    from django.utils import timezone

    return ScoreUpdate.objects.create(
        resource_link=ResourceLinkFactory(), lti_user=LtiUserFactory(), score_given=1, score_maximum=9,
        activity_progress="Completed", grading_progress="FullyGraded", timestamp=timezone.now(), state=state,
    )


def test_reports_broker_depths_and_outstanding_work_as_json(broker):
    broker("gpu", 2)
    _submission(CodeSubmission.Status.QUEUED)
    _submission(CodeSubmission.Status.QUEUED)
    _submission(CodeSubmission.Status.RUNNING)
    _submission(CodeSubmission.Status.GRADED)  # finished: not outstanding
    _score(ScoreUpdate.State.WAITING)
    _score(ScoreUpdate.State.DELIVERED)
    _score(ScoreUpdate.State.REFUSED)

    out = StringIO()
    call_command("show_queues", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["broker"] == {"reachable": True, "queues": {"default": 0, "gpu": 2}}
    assert status["submissions"]["queued"] == 2
    assert status["submissions"]["running"] == 1
    assert status["submissions"]["oldest_queued_age_s"] >= 0
    assert status["gradebook"]["waiting"] == 1
    assert status["gradebook"]["refused"] == 1


def test_plain_output_reads_as_sentences(broker):
    _submission(CodeSubmission.Status.QUEUED)
    out = StringIO()
    call_command("show_queues", stdout=out)
    text = out.getvalue()
    assert "broker queue gpu" in text and "broker queue default" in text
    assert "code submissions: 1 queued, 0 running" in text
    assert "gradebook scores: 0 waiting for delivery" in text


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_an_unreachable_broker_is_reported_and_fails_the_command_after_the_database_half():
    _submission(CodeSubmission.Status.QUEUED)
    out = StringIO()
    with pytest.raises(CommandError, match="broker cannot be reached"):
        call_command("show_queues", stdout=out)
    assert "broker unreachable" in out.getvalue()
    assert "code submissions: 1 queued" in out.getvalue()
