"""`manage.py send_pending_grades`: deliver what is due now, in this process, and say what happened."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from lti_tool.gradebook import services
from lti_tool.gradebook.models import ScoreUpdate
from tests.lti_tool import gradebook_support
from tests.lti_tool.gradebook_support import make_placement, make_student

pytestmark = pytest.mark.django_db
stub_lms = gradebook_support.stub_lms


def record(link, score):
    with transaction.atomic():
        return services.record_score(
            resource_link=link,
            lti_user=make_student(link),
            score_given=score,
            score_maximum=5.0,
            activity_progress="Completed",
            grading_progress="FullyGraded",
        )


def test_sends_due_scores_and_prints_counts(stub_lms):
    link = make_placement(stub_lms)
    record(link, 1.0)
    record(link, 2.0)
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 503, "busy")
    out = StringIO()
    call_command("send_pending_grades", stdout=out)
    text = out.getvalue()
    assert "This run: delivered: 1, waiting: 1" in text
    assert "Outbox: waiting: 1, delivered: 1, superseded: 0, refused: 0, skipped: 0" in text

    out = StringIO()
    call_command("send_pending_grades", stdout=out)  # the failed one is not due yet
    assert "nothing was due" in out.getvalue()

    out = StringIO()
    call_command("send_pending_grades", "--all", stdout=out)  # now, whatever the schedule says
    assert "This run: delivered: 1" in out.getvalue()
    assert ScoreUpdate.objects.filter(state="delivered").count() == 2
