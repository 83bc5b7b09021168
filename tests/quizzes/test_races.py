"""Attempt limits hold under concurrency: parallel submissions against PostgreSQL, each on its own connection."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from quizzes import services
from quizzes.models import Answer, Attempt, CodeAnswer, QuestionState
from tests.quizzes.factories import PlacementFactory, option_id, student_for

FIRST = "why-skip-connections"


def _race(n: int, action) -> list[str]:
    """Run `action(i)` in n threads released at the same instant; collect 'ok' / 'refused' / error names."""
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            action(i)
            outcome = "ok"
        except services.Refused:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001 - reported in the assertion below
            outcome = type(exc).__name__
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_never_both_use_the_last_attempt():
    assert connection.vendor == "postgresql"
    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    services.show_question(attempt, FIRST)
    services.submit_answer(attempt, FIRST, "B")  # one attempt left

    results = _race(8, lambda i: services.submit_answer(Attempt.objects.get(pk=attempt.pk), FIRST, "CDB"[i % 3]))

    assert sorted(results) == ["ok"] + ["refused"] * 7
    state = QuestionState.objects.get(attempt=attempt, slug=FIRST)
    assert state.attempts_used == 2 and state.status == QuestionState.Status.EXHAUSTED
    assert Answer.objects.filter(state=state).count() == 2


@pytest.mark.django_db(transaction=True)
def test_parallel_correct_answers_score_once():
    placement = PlacementFactory(mode="timed", slugs=[FIRST, "skip-block-output-shape"])
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    services.show_question(attempt, FIRST)

    results = _race(6, lambda i: services.submit_answer(Attempt.objects.get(pk=attempt.pk), FIRST, "A"))

    assert sorted(results) == ["ok"] + ["refused"] * 5
    attempt.refresh_from_db()
    assert attempt.score == 1.0
    assert Answer.objects.filter(state__attempt=attempt).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_starts_create_one_attempt():
    placement = PlacementFactory(mode="timed")
    user = student_for(placement.resource_link)

    results = _race(6, lambda i: services.start_attempt(placement, user))

    assert results == ["ok"] * 6
    assert Attempt.objects.filter(placement=placement, lti_user=user).count() == 1
    assert not CodeAnswer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_http_requests_never_both_use_the_last_attempt(live_server):
    """The same race through the web server: eight browsers post an answer at the same instant."""
    from dataclasses import asdict

    import requests
    from django.conf import settings
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.urls import reverse

    from lti_tool.sessions import SESSION_KEY
    from tests.lti_support import parse_forms
    from tests.quizzes.factories import launch_info

    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    rl = placement.resource_link
    user = student_for(rl)
    store = SessionStore()
    store[SESSION_KEY] = {str(rl.pk): asdict(launch_info(rl, user))}
    store.create()
    browser = requests.Session()
    browser.cookies.set(settings.SESSION_COOKIE_NAME, store.session_key)
    base = live_server.url

    def post(page, action_part, **fields):
        form = next(f for f in parse_forms(page.text, page.url) if action_part in f.action)
        return browser.post(form.action, data={**form.fields, **fields}, timeout=30)

    question = post(browser.get(base + reverse("quizzes:player", kwargs={"resource_link_pk": rl.pk}), timeout=30),
                    "/start/")
    question = post(question, "/open/")
    attempt = Attempt.objects.get(placement=placement, lti_user=user)
    question = post(question, "/answer/", choice=option_id(attempt, FIRST, "B"))  # one attempt left
    form = next(f for f in parse_forms(question.text, question.url) if "/answer/" in f.action)
    ids = {key: option_id(attempt, FIRST, key) for key in "ACD"}
    cookies = browser.cookies.get_dict()
    codes: list[int] = []

    def send(i: int) -> None:
        response = requests.post(
            form.action, data={**form.fields, "choice": ids["ACD"[i % 3]]}, cookies=cookies,
            headers={"Referer": base + "/"}, allow_redirects=False, timeout=60,
        )
        codes.append(response.status_code)

    results = _race(8, send)

    assert results == ["ok"] * 8
    assert sorted(codes) == [302] + [409] * 7
    state = QuestionState.objects.get(attempt__placement=placement, slug=FIRST)
    assert state.attempts_used == 2 and Answer.objects.filter(state=state).count() == 2
