"""Shuffled options: each attempt shows each multiple-choice question in its own stored order, lettered A, B, C... in
that order, under opaque per-attempt values; content cites options by key; instructors see choices by key."""

from __future__ import annotations

import csv
import html
import io
import re
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from lti_tool.models import LtiUser
from quizzes import content, services
from quizzes.content import ContentError, read_set_file
from quizzes.models import Answer, Attempt, AuditEntry, Placement, PlacementDraft, QuestionState
from tests.lti_support import choice_options, parse_forms, post_form
from tests.quizzes.factories import (
    PlacementFactory,
    establish_launch,
    instructor_for,
    option_id,
    shown_letter,
    student_for,
)

MC = ["why-skip-connections", "skip-block-output-shape", "channel-mismatch-block", "skip-loss-curves",
      "debug-skip-connection"]
FIRST = MC[0]
STUDENTS = [f"student{i}" for i in range(1, 7)]
CLOCK_FIELDS = {"remaining_s", "status", "attempts_left", "can_answer", "attempt_finished"}


def _texts(slug: str) -> dict[str, str]:
    """{content key: option text} of a question of the current set."""
    return {o["key"]: o["text"] for o in content.current_set().challenge(slug)["options"]}


def _assert_nothing_gives_the_answer_away(page_text: str, clock: str, slug: str) -> None:
    """An open question's HTML and its clock JSON: no content key as a value, no key or explanation, no answer."""
    challenge = content.current_set().challenge(slug)
    values = [value for _letter, value in choice_options(page_text).values()]
    assert len(values) == 4 and all(len(value) == 8 for value in values)
    assert not set(values) & set("ABCDEFGH")
    for text in (page_text, clock):
        assert "Correct answer" not in text and "data-answer" not in text and "data-key" not in text
        assert html.escape(challenge["explanation"][:50]) not in text and challenge["explanation"][:50] not in text
        assert "{option:" not in text
    for value in values:
        assert value not in clock


@pytest.mark.django_db(transaction=True)
def test_six_students_see_their_own_orders_answer_correctly_and_the_instructor_sees_choices_by_key(dev_lms):
    dev_lms.register_tool(style="canvas")
    dev_lms.enroll("student6")
    orders: dict[str, set[tuple[str, ...]]] = {slug: set() for slug in MC}
    seen: dict[str, dict[str, dict[str, str]]] = {}  # student -> slug -> {content key: letter shown}
    for index, user in enumerate(STUDENTS):
        learner = dev_lms.launch(user=user)
        session = learner.session
        question = post_form(session, learner.response, "/start/")
        seen[user] = {}
        for slug in MC:
            question = session.get(urljoin(question.url, f"../{slug}/"), timeout=30)
            question = post_form(session, question, "/open/")
            options = choice_options(question.text)
            texts = _texts(slug)
            key_of = {text: key for key, text in texts.items()}
            orders[slug].add(tuple(key_of[text] for text in options))
            seen[user][slug] = {key_of[text]: letter for text, (letter, _value) in options.items()}
            assert [letter for letter, _value in options.values()] == ["A", "B", "C", "D"]  # re-lettered in order
            clock_url = re.search(r'data-clock-url="([^"]+)"', question.text).group(1)
            clock = session.get(urljoin(question.url, clock_url), timeout=30)
            assert set(clock.json()) == CLOCK_FIELDS
            _assert_nothing_gives_the_answer_away(question.text, clock.text, slug)
            # A reload shows the same order (it is stored with the attempt, not drawn per request).
            again = session.get(question.url, timeout=30)
            assert list(choice_options(again.text)) == list(options)

            answer = content.current_set().challenge(slug)["answer"]
            if slug == FIRST and index < 3:  # half the class first picks option B
                wrong = post_form(session, question, "/answer/", choice=options[texts["B"]][1])
                assert "not correct" in wrong.text and "Correct answer" not in wrong.text
                question = wrong
            answered = post_form(session, question, "/answer/", choice=options[texts[answer]][1])
            assert answered.status_code == 200 and '<span class="ok">correct</span>' in answered.text
            assert f"Correct answer: <strong>{seen[user][slug][answer]}</strong>" in answered.text
            if slug == "skip-block-output-shape":  # the explanation cites option A by key: each reads their letter
                letters = seen[user][slug]
                assert f"Halving the size ({letters['A']}) would need stride 2" in answered.text
                assert f"62x62 ({letters['B']})" in answered.text and f"128 channels ({letters['C']})" in answered.text
            question = answered

    # At least three different orders of each shuffled question among six students (24 possible orders: the chance
    # of fewer than three among six uniform draws is below 1e-4 per question).
    for slug in MC:
        assert len(orders[slug]) >= 3, (slug, orders[slug])

    placement = Placement.objects.get()
    assert placement.rules["shuffle_options"] is True  # timed, the default mode, shuffles
    for user in STUDENTS:
        attempt = Attempt.objects.get(lti_user__sub=dev_lms.sub(user))
        assert attempt.score == 5.0 - (0.5 if user in STUDENTS[:3] else 0.0)
        for slug in MC:  # what is stored is the content's key, whatever letter the student saw
            state = attempt.states.get(slug=slug)
            assert [a.choice for a in state.answers.all()][-1] == content.current_set().challenge(slug)["answer"]

    # The instructor: statistics by key, the CSV by key with each student's order, each review page by key.
    teacher = dev_lms.launch(user="instructor1")
    board = teacher.response
    assert board.status_code == 200 and "/instructor/" in board.url
    assert "option B (3×)" in board.text
    rows = list(csv.DictReader(io.StringIO(teacher.session.get(board.url + "results.csv", timeout=30).text)))
    for user in STUDENTS:
        sub = dev_lms.sub(user)
        for slug in MC:
            row = next(r for r in rows if r["lti_sub"] == sub and r["challenge"] == slug)
            answer = content.current_set().challenge(slug)["answer"]
            expected = f"B {answer}" if slug == FIRST and user in STUDENTS[:3] else answer
            assert row["choices"] == expected
            assert row["option_order"] == "".join(sorted(seen[user][slug], key=seen[user][slug].get))

    rl_pk = urlsplit(board.url).path.split("/")[2]
    for user in STUDENTS:
        student = LtiUser.objects.get(sub=dev_lms.sub(user))
        page = teacher.session.get(dev_lms.base_url + f"/p/{rl_pk}/instructor/students/{student.pk}/", timeout=30)
        letters = seen[user][FIRST]
        order = ", ".join(f"{letter} = option {key}" for key, letter in sorted(letters.items(), key=lambda i: i[1]))
        assert f"Options in the order this student saw them: {order} (correct: option A)." in page.text
        if user in STUDENTS[:3]:
            shown = "" if letters["B"] == "B" else f" (shown to the student as {letters['B']})"
            assert f"<strong>option B</strong>{shown} — not correct" in page.text
    review = dev_lms.launch(user="instructor1", message_type="LtiSubmissionReviewRequest", for_user="student1")
    assert review.response.status_code == 200 and "/review/" in review.response.url
    letters = seen["student1"][FIRST]
    shown = "" if letters["A"] == "A" else f" (shown to the student as {letters['A']})"
    assert f"<strong>option A</strong>{shown} — correct" in review.response.text


# --- Rules: the mode decides, the instructor may override -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("mode,shuffled", [("practice", False), ("timed", True), ("exam", True)])
def test_the_mode_decides_whether_options_are_shuffled(mode, shuffled):
    assert content.get_modes()[mode]["shuffle_options"] is shuffled
    placement = PlacementFactory(mode=mode, slugs=[FIRST])
    assert placement.rules["shuffle_options"] is shuffled
    if not shuffled:  # the content's order, for every attempt
        for _ in range(5):
            attempt = services.start_attempt(placement, student_for(placement.resource_link))
            keys = [key for key, _id in attempt.states.get(slug=FIRST).presentation["options"]]
            assert keys == ["A", "B", "C", "D"]


@pytest.mark.django_db
def test_shuffled_orders_are_drawn_per_attempt_and_ids_are_never_keys():
    placement = PlacementFactory(mode="timed", slugs=[FIRST, "resnet-block-projection"])
    orders, ids = set(), set()
    for _ in range(12):
        attempt = services.start_attempt(placement, student_for(placement.resource_link))
        shown = attempt.states.get(slug=FIRST).presentation["options"]
        orders.add(tuple(key for key, _id in shown))
        ids.update(option_id for _key, option_id in shown)
        assert sorted(key for key, _id in shown) == ["A", "B", "C", "D"]
        assert "options" not in attempt.states.get(slug="resnet-block-projection").presentation
    assert len(orders) >= 3  # 24 orders, 12 draws
    assert len(ids) == 48 and not ids & set("ABCD")  # fresh for every attempt


@pytest.mark.django_db
def test_an_instructor_overrides_the_modes_rule_in_deep_linking_and_in_the_settings():
    config = services.build_placement_config(challenge_slugs=[FIRST], mode_slug="practice", shuffle_options=True)
    assert config["rules"]["shuffle_options"] is True
    config = services.build_placement_config(challenge_slugs=[FIRST], mode_slug="exam", shuffle_options=False)
    assert config["rules"]["shuffle_options"] is False

    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    rl = placement.resource_link
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    settings_url = reverse("quizzes:settings", kwargs={"resource_link_pk": rl.pk})
    form = {"challenges": [FIRST], "mode": "timed", "points": "1"}
    bad = teacher.post(settings_url, {**form, "shuffle_options": "sometimes"})
    assert bad.status_code == 400 and b"Choose an option order" in bad.content
    assert Placement.objects.get(pk=placement.pk).rules["shuffle_options"] is True  # unchanged
    assert teacher.post(settings_url, {**form, "shuffle_options": "off"}).status_code == 302
    placement.refresh_from_db()
    assert placement.rules["shuffle_options"] is False
    entry = AuditEntry.objects.get(placement=placement, action=AuditEntry.Action.SETTINGS)  # audited like any setting
    assert (entry.before["shuffle_options"], entry.after["shuffle_options"]) == (True, False)
    dashboard = teacher.get(reverse("quizzes:dashboard", kwargs={"resource_link_pk": rl.pk})).content.decode()
    assert '<option value="off" selected>' in dashboard  # the override is what the settings form shows
    attempt = services.start_attempt(placement, student_for(rl))
    assert [k for k, _id in attempt.states.get(slug=FIRST).presentation["options"]] == ["A", "B", "C", "D"]
    dashboard = teacher.get(reverse("quizzes:dashboard", kwargs={"resource_link_pk": rl.pk})).content.decode()
    assert "as in the content, for every student" in dashboard


@pytest.mark.django_db
def test_a_placement_following_its_mode_keeps_following_it_when_the_mode_changes():
    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    rl = placement.resource_link
    teacher = Client()
    establish_launch(teacher, rl, instructor_for(rl), staff=True)
    dashboard = teacher.get(reverse("quizzes:dashboard", kwargs={"resource_link_pk": rl.pk})).content.decode()
    assert '<option value="" selected>as the mode says' in dashboard
    settings_url = reverse("quizzes:settings", kwargs={"resource_link_pk": rl.pk})
    form = {"challenges": [FIRST], "mode": "practice", "points": "1", "shuffle_options": ""}
    assert teacher.post(settings_url, form).status_code == 302
    placement.refresh_from_db()
    assert placement.mode_slug == "practice" and placement.rules["shuffle_options"] is False


@pytest.mark.django_db(transaction=True)
def test_deep_linking_carries_the_option_order_to_the_placement(dev_lms):
    dev_lms.register_tool(style="canvas")
    teacher = dev_lms.launch(user="instructor1", resource_link=None, message_type="LtiDeepLinkingRequest")
    form = next(f for f in parse_forms(teacher.response.text, teacher.response.url) if "/deep-link/" in f.action)
    # The mode's rule unless the instructor picks one.
    default = r'<select id="dl-shuffle" name="shuffle_options">\s*<option value="" selected>'
    assert re.search(default, teacher.response.text)
    data = {**form.fields, "mode": "practice", "shuffle_options": "on", "challenges": [FIRST]}
    returned = dev_lms.deep_link_return(teacher.session.post(form.action, data=data, timeout=30), teacher.session)
    learner = dev_lms.launch(user="student1", resource_link=returned.links[0])
    assert learner.response.status_code == 200
    placement = Placement.objects.get(mode_slug="practice")
    assert placement.rules["shuffle_options"] is True and placement.draft.rules["shuffle_options"] is True


# --- What the browser sends -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_content_key_or_another_attempts_id_is_not_an_answer():
    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    rl = placement.resource_link
    alice, bob = student_for(rl), student_for(rl)
    mine, theirs = services.start_attempt(placement, alice), services.start_attempt(placement, bob)
    for attempt in (mine, theirs):
        services.show_question(attempt, FIRST)
    for value in ("A", "B", option_id(theirs, FIRST, "A"), "", "x" * 8, "é", "\x00", "ü" * 8):
        with pytest.raises(services.InvalidInput, match="not one of this question's options"):
            services.submit_option(mine, FIRST, value)
    assert not Answer.objects.exists() and mine.states.get(slug=FIRST).attempts_used == 0
    client = Client()  # over HTTP too: a value that is not text the id could be is a 400, never a 500
    establish_launch(client, rl, alice)
    url = reverse("quizzes:answer", kwargs={"resource_link_pk": rl.pk, "slug": FIRST})
    for value in ("é", "ü" * 8, "A", "\x00"):
        response = client.post(url, {"attempt": mine.pk, "choice": value})
        assert response.status_code == 400 and b"not one of this question" in response.content
    assert not Answer.objects.exists()
    answer = services.submit_option(mine, FIRST, option_id(mine, FIRST, "A"))
    assert answer.choice == "A" and answer.correct


@pytest.mark.django_db
def test_hints_and_explanations_cite_options_by_the_letter_the_student_saw():
    placement = PlacementFactory(mode="timed", slugs=["channel-mismatch-block"])
    rl = placement.resource_link
    user = student_for(rl)
    client = Client()
    establish_launch(client, rl, user)
    attempt = services.start_attempt(placement, user)
    services.show_question(attempt, "channel-mismatch-block")
    services.submit_answer(attempt, "channel-mismatch-block", "C")
    page = client.get(reverse("quizzes:question", kwargs={"resource_link_pk": rl.pk,
                                                          "slug": "channel-mismatch-block"})).content.decode()
    letters = {key: shown_letter(attempt, "channel-mismatch-block", key) for key in "ABCD"}
    assert f"Padding with zero channels ({letters['A']})" in page
    assert f"Max pooling ({letters['B']})" in page and f"({letters['D']}) is DenseNet" in page
    assert "{option:" not in page


def test_content_citing_an_option_that_does_not_exist_is_refused(tmp_path):
    source = (content.CONTENT_ROOT / "resnet" / "set.yaml").read_text()
    (tmp_path / "code").symlink_to(content.CONTENT_ROOT / "resnet" / "code")
    broken = tmp_path / "set.yaml"
    broken.write_text(source.replace("Halving the size ({option:A})", "Halving the size ({option:E})"))
    with pytest.raises(ContentError, match=r"\$\.challenges\[1\]\.explanation: \{option:E\} is not one of"):
        read_set_file(broken)


@pytest.mark.django_db
def test_a_question_state_made_before_shuffling_keeps_the_contents_order_under_opaque_ids():
    """Migration 0002 gives attempts already running the content's order (nothing moves under a student)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    placement = PlacementFactory(mode="timed", slugs=[FIRST])
    attempt = services.start_attempt(placement, student_for(placement.resource_link))
    QuestionState.objects.filter(attempt=attempt).update(presentation={})
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration("quizzes", "0002_question_presentation")
    state = executor.loader.project_state(("quizzes", "0002_question_presentation"))
    migration.operations[-1].code(state.apps, None)
    shown = QuestionState.objects.get(attempt=attempt, slug=FIRST).presentation["options"]
    assert [key for key, _id in shown] == ["A", "B", "C", "D"]
    assert all(len(option_id) == 8 for _key, option_id in shown)


@pytest.mark.django_db(transaction=True)
def test_a_refused_deep_linking_form_comes_back_with_what_the_instructor_chose(dev_lms):
    dev_lms.register_tool(style="canvas")
    teacher = dev_lms.launch(user="instructor1", resource_link=None, message_type="LtiDeepLinkingRequest")
    form = next(f for f in parse_forms(teacher.response.text, teacher.response.url) if "/deep-link/" in f.action)
    data = {**form.fields, "title": "Week 3", "mode": "practice", "shuffle_options": "off", "challenges": [FIRST],
            "points": "lots"}
    refused = teacher.session.post(form.action, data=data, timeout=30)
    assert refused.status_code == 400 and "Points and minutes must be numbers." in refused.text
    again = next(f for f in parse_forms(refused.text, refused.url) if "/deep-link/" in f.action)
    assert again.fields["title"] == "Week 3" and again.fields["mode"] == "practice"
    assert again.fields["challenges"] == FIRST and again.fields["points"] == "lots"  # the one box ticked
    assert '<option value="off" selected>' in refused.text
    oversized = teacher.session.post(form.action, data={**data, "title": "x" * 20_000}, timeout=30)
    assert oversized.status_code == 413 and "too large" in oversized.text
    assert not PlacementDraft.objects.exists()
