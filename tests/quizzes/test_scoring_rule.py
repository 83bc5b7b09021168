"""The scoring rule is on the question before the student answers, and a code result says why it earned what it did:
a full pass on a later attempt never reads as a lower grade than an earlier partial one without the reason."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from quizzes import services
from quizzes.models import QuestionState
from tests.quizzes.factories import PlacementFactory, establish_launch, student_for
from tests.quizzes.test_code_answers import BLOCK, _grade, _start

pytestmark = pytest.mark.django_db

FIRST = "why-skip-connections"


def _page(placement, user, slug: str) -> str:
    client = Client()
    establish_launch(client, placement.resource_link, user)
    url = reverse("quizzes:question", kwargs={"resource_link_pk": placement.resource_link.pk, "slug": slug})
    return client.get(url).content.decode()


@pytest.mark.parametrize(
    "mode,slug,rule",
    [
        ("timed", FIRST, "Worth 1 point. A right answer earns 100% on attempt 1, 50% on attempt 2. Using the hint "
                         "costs 0.1 of this question&#x27;s 1 point."),
        ("homework", FIRST, "Worth 1 point. A right answer earns 100% on attempt 1, 75% on attempt 2, 50% on "
                            "attempt 3. Using the hint costs 0.1"),
        ("exam", FIRST, "Worth 1 point. A right answer earns 100%.</p>"),
        ("practice", FIRST, "Worth 1 point. A right answer earns 100% on every attempt.</p>"),
        ("timed", BLOCK, "Worth 2 points, shared among the hidden checks that the starter code does not already pass "
                         "(the unchanged starter scores 0). A submission earns its share of the checks at 100% on "
                         "attempt 1, 50% on attempt 2 and later; your best submission counts. Using the hint costs "
                         "0.2 of this question&#x27;s 2 points."),
    ],
)
def test_the_scoring_rule_is_stated_before_the_student_answers(mode, slug, rule):
    placement = PlacementFactory(mode=mode, slugs=[slug])
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    if placement.rules["timer"] == "per_question":  # before the clock starts too: nothing answered yet
        assert "Start question" in (page := _page(placement, user, slug)) and rule in page
    services.show_question(attempt, slug)
    page = _page(placement, user, slug)
    assert attempt.states.get(slug=slug).attempts_used == 0
    assert f'<strong>Scoring:</strong> {rule}' in page


def test_a_full_pass_worth_less_than_an_earlier_partial_says_which_counts_and_why():
    """Measured from outside before: 1.07 on attempt 1, then "2.00/2.00 of the checks" and 1.00 under "Correct"."""
    placement, user, attempt = _start()
    first = services.submit_code(attempt, BLOCK, "x = 1\n")
    _grade(first.submission, 2.14)  # 53.5% of the checks: 1.07 of 2 points on attempt 1
    second = services.submit_code(attempt, BLOCK, "x = 2\n")
    _grade(second.submission, 4.0)  # all of them, on attempt 2 (50%): 1.00
    state = attempt.states.get(slug=BLOCK)
    assert state.status == QuestionState.Status.CORRECT and state.points == pytest.approx(1.07)

    page = re.sub(r"\s+", " ", _page(placement, user, BLOCK))
    assert "<strong>1.07</strong> of 2 points: 54% of the checks&#x27; points.</p>" in page
    assert ("<strong>1.00</strong> of 2 points: All checks passed; attempt 2 earns 50% of the points. "
            "Your best submission, 1.07 points from attempt 1, is what counts for this question.</p>") in page


def test_a_check_the_starter_already_passes_says_it_earns_nothing():
    placement, user, attempt = _start()
    answer = services.submit_code(attempt, BLOCK, "x = 1\n")
    from grading import services as grading
    from grading.models import CodeSubmission

    grading.finish_grading(
        answer.submission.pk, status=CodeSubmission.Status.GRADED, score=1.0, max_score=2.0, feedback="",
        checks=[
            {"name": "Identity skip path", "passed": True, "points": 0.0, "max_points": 0.0, "feedback": "",
             "starter_points": 2.0},
            {"name": "Output shape", "passed": False, "points": 0.0, "max_points": 1.2, "feedback": "",
             "starter_points": 0.8},
            {"name": "1x1 projection", "passed": True, "points": 2.0, "max_points": 2.0, "feedback": ""},
        ],
    )
    page = _page(placement, user, BLOCK)
    assert "Identity skip path (the starter code already passes this check: no points)" in page
    assert "Output shape (the starter code already earns 0.8 of this check&#x27;s points: only what you add counts)" \
        in page
    assert "1x1 projection</li>" in page
