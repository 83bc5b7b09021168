"""The student player and the instructor pages over HTTP (session launch established directly)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from quizzes import content, services
from quizzes.models import Accommodation, Answer, Attempt, Placement, QuestionState
from tests.factories import ResourceLinkFactory
from tests.quizzes.factories import (
    PlacementFactory,
    establish_launch,
    instructor_for,
    option_id,
    shown_letter,
    student_for,
)

pytestmark = pytest.mark.django_db

FIRST = "why-skip-connections"
FIRST_TEXT = "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks."


def url(name: str, rl, **kwargs) -> str:
    return reverse(f"quizzes:{name}", kwargs={"resource_link_pk": rl.pk, **kwargs})


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def _player(mode: str = "timed", slugs=None, client: Client | None = None):
    placement = PlacementFactory(mode=mode, slugs=slugs)
    rl = placement.resource_link
    user = student_for(rl)
    client = client or Client()
    establish_launch(client, rl, user)
    return placement, rl, user, client


def _csrf(client: Client, page_url: str) -> str:
    page = client.get(page_url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def _started(mode="timed", slugs=None):
    placement, rl, user, client = _player(mode, slugs)
    client.post(url("start", rl))
    attempt = Attempt.objects.get(placement=placement, lti_user=user)
    return placement, rl, user, client, attempt


def _open(client, rl, attempt, slug=FIRST):
    return client.post(url("open_question", rl, slug=slug), {"attempt": attempt.pk})


# --- Launch and access ------------------------------------------------------------------------------------------


def test_a_student_launch_lands_on_the_player_and_an_instructor_on_the_dashboard():
    placement = PlacementFactory()
    rl = placement.resource_link
    student, teacher = Client(), Client()
    establish_launch(student, rl, student_for(rl))
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    assert student.get(url("launch", rl))["Location"] == url("player", rl)
    assert teacher.get(url("launch", rl))["Location"] == url("dashboard", rl)


def test_pages_refuse_a_session_that_did_not_launch_the_link():
    placement = PlacementFactory()
    response = Client().get(url("player", placement.resource_link))
    assert response.status_code == 403
    assert b"launch the activity again" in response.content


def test_a_link_never_configured_gets_the_whole_set_in_timed_mode():
    rl = ResourceLinkFactory()
    client = Client()
    establish_launch(client, rl, student_for(rl))
    assert client.get(url("launch", rl)).status_code == 302
    placement = Placement.objects.get(resource_link=rl)
    assert placement.mode_slug == "timed"
    assert placement.challenge_slugs == [c["slug"] for c in content.current_set().challenges]
    assert len(placement.challenge_slugs) == 9


def test_students_cannot_open_instructor_pages():
    placement, rl, user, client = _player()
    for name in ("dashboard", "export_csv"):
        assert client.get(url(name, rl)).status_code == 403
    assert client.get(url("student", rl, lti_user_pk=user.pk)).status_code == 403
    response = client.post(url("accommodation", rl, lti_user_pk=user.pk), {"time_multiplier": "3"})
    assert response.status_code == 403
    assert not Accommodation.objects.exists()


# --- Playing ----------------------------------------------------------------------------------------------------


def test_the_player_lists_all_nine_challenges_and_starts_an_attempt():
    placement, rl, user, client = _player()
    page = client.get(url("player", rl)).content.decode()
    for challenge in content.current_set().challenges:
        assert challenge["title"].replace("'", "&#x27;") in page
    response = client.post(url("start", rl))
    assert response.status_code == 302 and response["Location"] == url("question", rl, slug=FIRST)


def test_a_timed_question_is_not_shown_until_its_clock_is_started():
    placement, rl, user, client, attempt = _started()
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert "Start question" in page and FIRST_TEXT not in page
    assert attempt.states.get(slug=FIRST).first_shown_at is None
    _open(client, rl, attempt)
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert FIRST_TEXT in page
    assert "Attempts: <strong>2</strong> left" in page
    assert re.search(r'data-remaining="1[12]\d"', page)


def test_each_option_is_a_radio_input_with_a_label_holding_its_text():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    texts = {o["key"]: o["text"] for o in content.current_set().challenge(FIRST)["options"]}
    shown = attempt.states.get(slug=FIRST).presentation["options"]
    for letter, (key, shown_id) in zip("ABCD", shown, strict=True):
        # Lettered in display order; the value is the attempt's opaque id, never the content's key.
        assert f'<input type="radio" name="choice" id="choice-{letter}" value="{shown_id}" required>' in page
        assert f'<label for="choice-{letter}"><span class="key">{letter}</span> {texts[key]}</label>' in page
        assert len(shown_id) == 8 and shown_id not in "ABCD"


def test_the_remaining_time_comes_from_the_server_and_survives_a_reload():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    QuestionState.objects.filter(attempt=attempt, slug=FIRST).update(
        deadline=timezone.now() + timedelta(seconds=42)
    )
    for _ in range(2):
        page = client.get(url("question", rl, slug=FIRST)).content.decode()
        remaining = int(re.search(r'data-remaining="(\d+)"', page).group(1))
        assert 38 <= remaining <= 42
    clock = client.get(url("clock", rl, slug=FIRST)).json()
    assert 38 <= clock["remaining_s"] <= 42 and clock["can_answer"] is True


def test_answer_keys_and_explanations_never_reach_the_browser_before_the_question_is_finished():
    placement, rl, user, client, attempt = _started()
    challenge = content.current_set().challenge(FIRST)
    _open(client, rl, attempt)
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "B")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    clock = client.get(url("clock", rl, slug=FIRST)).content.decode()
    for text in (page, clock):
        assert challenge["explanation"][:60] not in text
        assert "Correct answer" not in text
        assert "correct-answer" not in text and 'data-answer' not in text
    assert "not correct" in page
    # Finished: now the answer and the explanation are shown.
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "C")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert f"Correct answer: <strong>{shown_letter(attempt, FIRST, 'A')}</strong>" in page
    assert challenge["explanation"][:60] in page


def test_exam_answers_are_revealed_only_after_the_exam_closes():
    placement, rl, user, client, attempt = _started("exam", slugs=[FIRST, "skip-block-output-shape"])
    client.get(url("question", rl, slug=FIRST))
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "B")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert "recorded" in page and "not correct" not in page and "Correct answer" not in page
    assert "Answered" in page and "No attempts left" not in page
    client.post(url("finish", rl), {"attempt": attempt.pk})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert f"Correct answer: <strong>{shown_letter(attempt, FIRST, 'A')}</strong>" in page and "not correct" in page


def test_finishing_asks_first_listing_the_unanswered_and_a_get_changes_nothing():
    placement, rl, user, client, attempt = _started(slugs=[FIRST, "resnet-block-projection"])
    player = client.get(url("player", rl)).content.decode()
    assert f'<form method="get" action="{url("finish", rl)}"' in player
    page = client.get(url("finish", rl))
    assert page.status_code == 200
    text = page.content.decode()
    assert "2 challenges not answered" in text and "Fix the block: a projection shortcut" in text
    assert f'name="attempt" value="{attempt.pk}"' in text and "Yes, finish and see my score" in text
    attempt.refresh_from_db()
    assert attempt.finished_at is None
    client.post(url("finish", rl), {"attempt": attempt.pk})
    attempt.refresh_from_db()
    assert attempt.finished_at is not None
    response = client.get(url("finish", rl))  # nothing left to confirm
    assert response.status_code == 302 and response["Location"] == url("summary", rl)


def _review(page: str) -> dict[str, str]:
    """A question page's review marks per shown letter: "chosen", "correct", "chosen correct", or absent."""
    options = re.findall(r'<div class="option([^"]*)">\s*<input type="radio"[^>]*id="choice-([A-H])"', page)
    return {letter: classes.replace("option-", "").strip() for classes, letter in options if classes}


def test_the_review_marks_the_chosen_option_and_the_correct_one_only_once_revealed():
    placement, rl, user, client, attempt = _started(slugs=[FIRST, "skip-block-output-shape"])
    _open(client, rl, attempt)
    wrong, right = shown_letter(attempt, FIRST, "B"), shown_letter(attempt, FIRST, "A")
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "B")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    # One attempt left: the choice is marked, the key is not in the page at all.
    assert _review(page) == {wrong: "chosen"} and "Correct answer" not in page and "option-correct" not in page
    assert " checked>" not in page  # still open: the student chooses again
    other = shown_letter(attempt, FIRST, "C")
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "C")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert _review(page) == {wrong: "chosen", other: "chosen", right: "correct"}
    assert re.search(rf'id="choice-{other}"[^>]*\bchecked>', page)  # closed: the last choice stays selected
    assert '<span class="tag tag-correct">Correct answer</span>' in page and "{#" not in page and "#}" not in page
    player = client.get(url("player", rl)).content.decode()
    assert "Points so far: <strong>0.00</strong> of 2" in player and "0.00 of 1 point</span>" in player


def test_exam_review_shows_the_choice_but_no_key_and_no_running_score_until_it_closes():
    placement, rl, user, client, attempt = _started("exam", slugs=[FIRST, "skip-block-output-shape"])
    client.get(url("question", rl, slug=FIRST))
    client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "A")})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert _review(page) == {shown_letter(attempt, FIRST, "A"): "chosen"}
    assert "option-correct" not in page and "Correct answer" not in page and "Points so far" not in page
    player = client.get(url("player", rl)).content.decode()
    assert "Points are shown when the attempt closes." in player and "Points so far" not in player
    assert "point</span>" not in player
    client.post(url("finish", rl), {"attempt": attempt.pk})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert _review(page) == {shown_letter(attempt, FIRST, "A"): "chosen correct"}


def test_the_first_seed_question_answered_with_gradients_flowing_is_correct():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    response = client.post(
        url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "A")}
    )
    assert response.status_code == 302
    state = attempt.states.get(slug=FIRST)
    assert state.status == QuestionState.Status.CORRECT and state.points == 1


def test_two_wrong_answers_exhaust_the_question_and_lock_the_form():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    for key in "BC":
        client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, key)})
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert "No attempts left" in page and "<fieldset disabled>" in page and "Submit answer" not in page
    response = client.post(
        url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "A")}
    )
    assert response.status_code == 409 and b"This question is finished" in response.content


def test_an_answer_after_the_deadline_is_refused_with_a_clear_message():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    QuestionState.objects.filter(attempt=attempt, slug=FIRST).update(deadline=timezone.now() - timedelta(seconds=10))
    response = client.post(
        url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": option_id(attempt, FIRST, "A")}
    )
    assert response.status_code == 409
    assert b"Time is up for this question" in response.content
    assert f'<a href="{url("question", rl, slug=FIRST)}">Back</a>' in response.content.decode()
    assert not Answer.objects.exists()
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert "Time ran out" in page


def test_hints_are_revealed_on_request():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    hint = content.current_set().challenge(FIRST)["hint"]
    page = client.get(url("question", rl, slug=FIRST)).content.decode()
    assert hint not in page and "Show hint" in page and "costs 0.1" in page
    client.post(url("hint", rl, slug=FIRST), {"attempt": attempt.pk})
    assert hint in client.get(url("question", rl, slug=FIRST)).content.decode()


def test_the_summary_shows_score_time_attempts_and_badge():
    mc = ["why-skip-connections", "skip-block-output-shape", "channel-mismatch-block", "skip-loss-curves",
          "debug-skip-connection"]
    placement, rl, user, client, attempt = _started(slugs=mc)
    for slug, key in zip(mc, "ADCBA", strict=True):
        _open(client, rl, attempt, slug)
        client.post(url("answer", rl, slug=slug), {"attempt": attempt.pk, "choice": option_id(attempt, slug, key)})
    response = client.get(url("player", rl))
    assert response["Location"] == url("summary", rl)
    page = client.get(url("summary", rl)).content.decode()
    assert "<strong>5.00</strong> of 5 points" in page
    assert "ResNet Mastery Badge" in page and "badge-earned" in page
    assert "Time used" in page and "Attempts used" in page


def test_code_challenges_are_a_form_with_a_textarea_holding_the_starter_code():
    placement, rl, user, client, attempt = _started(slugs=["resnet-block-projection"])
    _open(client, rl, attempt, "resnet-block-projection")
    page = client.get(url("question", rl, slug="resnet-block-projection")).content.decode()
    assert '<textarea id="code-input" name="code"' in page and '<label for="code-input" id="code-label">' in page
    assert "class ResNetBlock(nn.Module):" in page
    assert "ResNetBlock(64, 128)(torch.randn(1, 64, 32, 32)).shape == (1, 128, 32, 32)" in page
    spec = content.get_code_challenge("resnet-block-projection")
    if spec.solution_source.strip():
        assert spec.solution_source.strip().splitlines()[-1] not in page


# --- Tampering --------------------------------------------------------------------------------------------------


def test_an_option_not_in_the_question_is_refused_and_nothing_is_stored():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    for choice in ("A", "E", "AA", "<script>", "x" * 500):  # "A": content keys are not what a browser submits
        response = client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": choice})
        assert response.status_code == 400
    assert b"not one of this question" in response.content
    assert not Answer.objects.exists() and attempt.states.get(slug=FIRST).attempts_used == 0


def test_someone_elses_attempt_is_refused():
    placement, rl, user, client, attempt = _started()
    other = student_for(rl)
    other_attempt = services.start_attempt(placement, other)
    services.show_question(other_attempt, FIRST)
    response = client.post(
        url("answer", rl, slug=FIRST), {"attempt": other_attempt.pk, "choice": option_id(other_attempt, FIRST, "B")}
    )
    assert response.status_code == 403 and b"That attempt is not yours" in response.content
    assert not Answer.objects.exists()


def test_missing_fields_are_refused():
    placement, rl, user, client, attempt = _started()
    _open(client, rl, attempt)
    assert client.post(url("answer", rl, slug=FIRST), {"choice": "A"}).status_code == 400
    response = client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk})
    assert response.status_code == 400 and b"Choose one of the options" in response.content
    assert client.post(url("code", rl, slug=FIRST), {"attempt": attempt.pk}).status_code == 400
    assert not Answer.objects.exists()


def test_a_challenge_outside_the_placement_is_not_found():
    placement, rl, user, client, attempt = _started(slugs=[FIRST])
    assert client.get(url("question", rl, slug="bottleneck-block")).status_code == 404
    response = client.post(url("answer", rl, slug="skip-block-output-shape"), {"attempt": attempt.pk, "choice": "D"})
    assert response.status_code == 404


def test_submitted_code_returns_to_its_result_right_under_the_button():
    placement, rl, user, client, attempt = _started(slugs=["resnet-block-projection"])
    _open(client, rl, attempt, "resnet-block-projection")
    question_url = url("question", rl, slug="resnet-block-projection")
    response = client.post(url("code", rl, slug="resnet-block-projection"), {"attempt": attempt.pk, "code": "x = 1\n"})
    assert response.status_code == 302 and response["Location"] == question_url + "#code-result"
    page = client.get(question_url).content.decode()
    form = page[page.index('id="answer-form"'):page.index("</form>", page.index('id="answer-form"'))]
    result = form[form.index('<div id="code-result"'):]
    assert 'role="status" aria-live="polite"' in result and "Grading: " in result and "data-status-url=" in result
    assert "Earlier submissions" not in page  # one submission: shown once, where the student is looking


def test_megabytes_of_text_are_refused_before_anything_is_stored():
    placement, rl, user, client, attempt = _started(slugs=["resnet-block-projection"])
    _open(client, rl, attempt, "resnet-block-projection")
    big = "x = 1\n" * 400_000  # 2.4 MB
    response = client.post(url("code", rl, slug="resnet-block-projection"), {"attempt": attempt.pk, "code": big})
    assert response.status_code == 413 and b"too large" in response.content
    medium = "# padding\n" * 10_000  # 100 KB: under the request limit, over the code limit
    response = client.post(url("code", rl, slug="resnet-block-projection"), {"attempt": attempt.pk, "code": medium})
    assert response.status_code == 400 and b"larger than 64 KiB" in response.content
    response = client.post(url("answer", rl, slug=FIRST), {"attempt": attempt.pk, "choice": "A" * 100_000})
    assert response.status_code == 413
    assert attempt.states.get(slug="resnet-block-projection").attempts_used == 0


def test_forms_are_csrf_protected(csrf_client):
    placement, rl, user, client = _player(client=csrf_client)
    assert csrf_client.post(url("start", rl)).status_code == 403
    assert not Attempt.objects.exists()
    token = _csrf(csrf_client, url("player", rl))
    assert csrf_client.post(url("start", rl), {"csrfmiddlewaretoken": token}).status_code == 302


def test_get_is_not_allowed_on_answer_endpoints():
    placement, rl, user, client, attempt = _started()
    assert client.get(url("answer", rl, slug=FIRST)).status_code == 405


# --- Instructor -------------------------------------------------------------------------------------------------


def _class_with_results():
    placement = PlacementFactory(mode="timed", slugs=[FIRST, "skip-block-output-shape"])
    rl = placement.resource_link
    alice, bob = student_for(rl, name="Alice"), student_for(rl, name="Bob")
    for user, choices in ((alice, ["A"]), (bob, ["B", "C"])):
        attempt = services.start_attempt(placement, user)
        services.show_question(attempt, FIRST)
        for choice in choices:
            services.submit_answer(attempt, FIRST, choice)
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    return placement, rl, alice, bob, teacher


def test_the_dashboard_shows_settings_results_and_statistics():
    placement, rl, alice, bob, teacher = _class_with_results()
    page = teacher.get(url("dashboard", rl)).content.decode()
    assert "Timed challenge" in page and placement.challenge_set.version in page
    assert "Alice" in page and "Bob" in page
    assert "Correct" in page and "No attempts left" in page
    assert "50%" in page  # one of two students correct on the first question
    assert "B (1×)" in page  # the most chosen wrong option (tie between B and C broken alphabetically)
    assert reverse("lti_tool:gradebook_status", kwargs={"resource_link_pk": rl.pk}) in page


def test_the_dashboard_lists_the_students_who_have_not_started():
    placement, rl, alice, bob, teacher = _class_with_results()
    student_for(rl, name="Carol Nostart")  # known from the roster (or an earlier launch), no attempt here
    student_for(ResourceLinkFactory(), name="Dave Elsewhere")  # another course
    instructor_for(rl, name="Ingrid Instructor")
    page = teacher.get(url("dashboard", rl)).content.decode()
    section = page[page.index('id="not-started-heading"') :]
    section = section[: section.index("</section>")]
    assert "Not started (1)" in section and "Carol Nostart" in section
    assert "Alice" not in section and "Dave Elsewhere" not in section  # started; another course
    assert "Ingrid Instructor" not in section  # instructors are not students


def test_one_students_history_and_an_accommodation():
    placement, rl, alice, bob, teacher = _class_with_results()
    page = teacher.get(url("student", rl, lti_user_pk=bob.pk)).content.decode()
    # By the content's key, with the letter Bob's own (shuffled) order showed it under.
    letter = shown_letter(Attempt.objects.get(lti_user=bob), FIRST, "B")
    assert "Attempt 1 at" in page
    assert re.search(rf"<strong>option B</strong>( \(shown to the student as {letter}\))? — not correct", page)
    token_page = teacher.get(url("student", rl, lti_user_pk=bob.pk))
    assert token_page.status_code == 200
    response = teacher.post(
        url("accommodation", rl, lti_user_pk=bob.pk), {"time_multiplier": "1.5", "extra_attempts": "1"}
    )
    assert response.status_code == 302
    accommodation = Accommodation.objects.get(placement=placement, lti_user=bob)
    assert (accommodation.time_multiplier, accommodation.extra_attempts) == (1.5, 1)
    bad = teacher.post(url("accommodation", rl, lti_user_pk=bob.pk), {"time_multiplier": "50"})
    assert bad.status_code == 400 and b"between 1 and 10" in bad.content
    assert Accommodation.objects.get(pk=accommodation.pk).time_multiplier == 1.5


def test_the_review_launch_shows_the_students_work():
    placement, rl, alice, bob, teacher = _class_with_results()
    response = teacher.get(reverse("quizzes:review", kwargs={"resource_link_pk": rl.pk, "lti_user_pk": alice.pk}))
    assert response.status_code == 200 and b"Alice" in response.content


def test_a_student_of_another_platform_is_not_found():
    placement, rl, alice, bob, teacher = _class_with_results()
    stranger = student_for(ResourceLinkFactory())
    assert teacher.get(url("student", rl, lti_user_pk=stranger.pk)).status_code == 404
    response = teacher.post(url("accommodation", rl, lti_user_pk=stranger.pk), {"time_multiplier": "2"})
    assert response.status_code == 404


def test_the_csv_export_has_a_row_per_student_and_challenge():
    placement, rl, alice, bob, teacher = _class_with_results()
    response = teacher.get(url("export_csv", rl))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    alice_first = next(r for r in rows if r["student"] == "Alice" and r["challenge"] == FIRST)
    assert alice_first["status"] == "correct" and float(alice_first["points"]) == 1.0
    bob_first = next(r for r in rows if r["student"] == "Bob" and r["challenge"] == FIRST)
    assert bob_first["status"] == "exhausted" and bob_first["attempts_used"] == "2"
    assert bob_first["choices"] == "B C" and sorted(bob_first["option_order"]) == list("ABCD")


def test_the_csv_export_neutralises_formulas():
    placement, rl, alice, bob, teacher = _class_with_results()
    alice.name = "=HYPERLINK(\"http://evil\")"
    alice.save()
    body = teacher.get(url("export_csv", rl)).content.decode()
    assert "'=HYPERLINK" in body


def test_settings_can_change_until_a_student_starts():
    placement = PlacementFactory(mode="timed")
    rl = placement.resource_link
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    response = teacher.post(
        url("settings", rl),
        {"mode": "exam", "challenges": [FIRST, "debug-skip-connection"], "points": "20", "exam_minutes": "10"},
    )
    assert response.status_code == 302
    placement.refresh_from_db()
    assert placement.mode_slug == "exam" and placement.rules["set_time_limit_s"] == 600 and placement.points == 20
    assert placement.challenge_slugs == [FIRST, "debug-skip-connection"]
    services.start_attempt(placement, student_for(rl))
    response = teacher.post(url("settings", rl), {"mode": "practice", "challenges": [FIRST]})
    assert response.status_code == 409
    placement.refresh_from_db()
    assert placement.mode_slug == "exam"


def test_a_nul_character_in_a_title_or_a_note_is_refused_and_changes_nothing():
    # No database text can hold a NUL: a clear 400, not a failure half-way through saving.
    placement, rl, alice, bob, teacher = _class_with_results()
    fresh = PlacementFactory(mode="timed")
    establish_launch(teacher, fresh.resource_link, instructor_for(fresh.resource_link), staff=True)

    response = teacher.post(url("settings", fresh.resource_link), {"mode": "exam", "challenges": [FIRST],
                                                                   "title": "Week\x003"})
    assert response.status_code == 400 and b"NUL character" in response.content
    fresh.refresh_from_db()
    assert fresh.mode_slug == "timed" and "\x00" not in fresh.title

    response = teacher.post(url("accommodation", rl, lti_user_pk=bob.pk),
                            {"time_multiplier": "1.5", "extra_attempts": "1", "note": "extra\x00time"})
    assert response.status_code == 400 and b"NUL character" in response.content
    assert not Accommodation.objects.filter(placement=placement, lti_user=bob).exists()


def test_settings_refuse_numbers_that_are_not_numbers_and_read_the_exam_minutes_only_for_a_whole_set_timer():
    placement = PlacementFactory(mode="timed")
    rl = placement.resource_link
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    for fields in ({"points": "many"}, {"mode": "exam", "exam_minutes": "ten"}, {"points": "nan"}):
        response = teacher.post(url("settings", rl), {"mode": "practice", "challenges": [FIRST], **fields})
        assert response.status_code == 400 and b"Points and minutes must be numbers." in response.content
        placement.refresh_from_db()
        assert placement.mode_slug == "timed"
    # The form always carries the exam field; a mode with a timer per question ignores it.
    response = teacher.post(url("settings", rl), {"mode": "practice", "challenges": [FIRST], "exam_minutes": "ten"})
    assert response.status_code == 302
    placement.refresh_from_db()
    assert placement.mode_slug == "practice" and not placement.rules.get("set_time_limit_s")


def test_an_accommodation_form_reads_empty_fields_as_none_and_refuses_words():
    placement, rl, alice, bob, teacher = _class_with_results()
    response = teacher.post(url("accommodation", rl, lti_user_pk=bob.pk), {"time_multiplier": "twice"})
    assert response.status_code == 400 and b"must be numbers" in response.content
    assert not Accommodation.objects.filter(placement=placement, lti_user=bob).exists()
    response = teacher.post(url("accommodation", rl, lti_user_pk=bob.pk),
                            {"time_multiplier": "", "extra_attempts": "", "note": " quiet room "})
    assert response.status_code == 302
    granted = Accommodation.objects.get(placement=placement, lti_user=bob)
    assert (granted.time_multiplier, granted.extra_attempts, granted.note) == (1.0, 0, "quiet room")
