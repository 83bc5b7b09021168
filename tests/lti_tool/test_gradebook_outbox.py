"""The outbox: recording scores, the newest-wins rule, AGS timestamps, and the delivery state machine.

The platform is a real HTTP server on 127.0.0.1 (tests/lti_tool/gradebook_support.py) so every answer the LMS can
give happens on demand; the end-to-end tests against the development LMS and a real worker live in
test_gradebook_worker.py.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings

from lti_tool.gradebook import services
from lti_tool.gradebook.models import LineItem, ScoreUpdate
from tests.lti_tool import gradebook_support
from tests.lti_tool.gradebook_support import make_placement, make_student, record

stub_lms = gradebook_support.stub_lms

pytestmark = pytest.mark.django_db

State = ScoreUpdate.State


def scores_posted(stub):
    return [s.body for s in stub.requests_to("POST", "/lineitems/7/lineitem/scores")]


# --- Recording ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_record_score_refuses_to_run_outside_a_transaction(stub_lms):
    link = make_placement(stub_lms)
    with pytest.raises(transaction.TransactionManagementError):
        services.record_score(
            resource_link=link,
            lti_user=make_student(link),
            score_given=1.0,
            score_maximum=5.0,
            activity_progress="Completed",
            grading_progress="FullyGraded",
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grading_progress": "Done"},
        {"activity_progress": "Finished"},
        {"score_maximum": 0.0},
        {"score_given": -1.0},
        {"score_given": float("nan")},
        {"score_given": None},  # FullyGraded without a score
    ],
)
def test_record_score_rejects_bad_values_and_writes_nothing(stub_lms, kwargs):
    link = make_placement(stub_lms)
    student = make_student(link)
    values = dict(score_given=1.0, score_maximum=5.0, activity_progress="Completed", grading_progress="FullyGraded")
    values.update(kwargs)
    with pytest.raises(ValueError), transaction.atomic():
        services.record_score(resource_link=link, lti_user=student, **values)
    assert ScoreUpdate.objects.count() == 0


def test_record_score_rejects_a_user_of_another_platform(stub_lms):
    link = make_placement(stub_lms)
    stranger = make_student(make_placement(stub_lms))
    with pytest.raises(ValueError), transaction.atomic():
        services.record_score(
            resource_link=link,
            lti_user=stranger,
            score_given=1.0,
            score_maximum=5.0,
            activity_progress="Completed",
            grading_progress="FullyGraded",
        )


def test_timestamps_are_milliseconds_strictly_increasing_and_a_second_apart(stub_lms, clock):
    clock.advance(0.123456)  # a time between milliseconds
    link = make_placement(stub_lms)
    student = make_student(link)
    first = record(link, student, 1.0)
    second = record(link, student, 2.0)  # same instant: pushed one second later
    clock.advance(0.2)
    third = record(link, student, 3.0)  # 0.2 s later: still at least a second after the second
    clock.advance(10)
    fourth = record(link, student, 4.0)  # well after: the clock's own time
    assert first.timestamp.microsecond == 123000  # millisecond precision
    assert second.timestamp - first.timestamp == timedelta(seconds=1)
    assert third.timestamp - second.timestamp == timedelta(seconds=1)
    now = clock.now
    assert fourth.timestamp == now.replace(microsecond=now.microsecond // 1000 * 1000)
    # Whole seconds (Moodle's comparison) strictly increase too.
    whole = [int(u.timestamp.timestamp()) for u in (first, second, third, fourth)]
    assert whole == sorted(set(whole))


def test_timestamps_are_per_student_and_placement(stub_lms, clock):
    link = make_placement(stub_lms)
    other_link = make_placement(stub_lms)
    alice, bob = make_student(link), make_student(link)
    a = record(link, alice)
    b = record(link, bob)
    assert a.timestamp == b.timestamp  # different students do not push each other
    c = record(other_link, make_student(other_link))
    assert c.timestamp == a.timestamp


def test_newer_score_supersedes_an_older_waiting_one(stub_lms, clock):
    link = make_placement(stub_lms)
    student, other = make_student(link), make_student(link)
    old = record(link, student, 1.0)
    others = record(link, other, 4.0)
    new = record(link, student, 2.0)
    old.refresh_from_db()
    others.refresh_from_db()
    assert old.state == State.SUPERSEDED
    assert new.state == State.WAITING
    assert others.state == State.WAITING


def test_delivered_scores_are_not_superseded(stub_lms, clock):
    link = make_placement(stub_lms)
    student = make_student(link)
    old = record(link, student, 1.0)
    assert services.deliver_score_update(old.pk) == State.DELIVERED
    record(link, student, 2.0)
    old.refresh_from_db()
    assert old.state == State.DELIVERED


def test_delivery_is_enqueued_only_when_the_transaction_commits(stub_lms, django_capture_on_commit_callbacks):
    link = make_placement(stub_lms)
    student = make_student(link)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(link, student)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        try:
            with transaction.atomic():
                record(link, student)
                raise RuntimeError("the grade's transaction fails")
        except RuntimeError:
            pass
    assert callbacks == []
    assert ScoreUpdate.objects.count() == 1


def test_pending_is_never_sent_to_moodle(stub_lms, clock):
    link = make_placement(stub_lms, family="moodle")
    student = make_student(link)
    pending = record(link, student, None, grading="Pending", activity="Submitted")
    assert pending.state == State.SKIPPED
    assert services.deliver_score_update(pending.pk) == State.SKIPPED
    final = record(link, student, 4.0)
    assert final.timestamp - pending.timestamp >= timedelta(seconds=1)
    assert services.deliver_score_update(final.pk) == State.DELIVERED
    posted = scores_posted(stub_lms)
    assert [p["gradingProgress"] for p in posted] == ["FullyGraded"]


def test_pending_on_canvas_preserves_the_score_and_the_final_score_is_a_follow_up(stub_lms, clock):
    link = make_placement(stub_lms, family="canvas")
    student = make_student(link)
    pending = record(link, student, None, grading="Pending", activity="Submitted", comment="")
    services.deliver_score_update(pending.pk)
    clock.advance(5)
    final = record(link, student, 4.0, comment="Block with projection: 4/5 checks passed")
    services.deliver_score_update(final.pk)
    first, second = scores_posted(stub_lms)
    ext = "https://canvas.instructure.com/lti/submission"
    assert first["gradingProgress"] == "Pending"
    assert "scoreGiven" not in first and "scoreMaximum" not in first
    assert first[ext] == {"new_submission": True, "preserve_score": True}
    assert second["gradingProgress"] == "FullyGraded"
    assert second["scoreGiven"] == 4.0 and second["scoreMaximum"] == 5.0
    assert second["activityProgress"] == "Completed"
    assert second["comment"] == "Block with projection: 4/5 checks passed"
    # The tool's first grade for this student: a grade already in Canvas can only be a teacher's, and is kept.
    assert second[ext] == {"new_submission": False, "prioritize_non_tool_grade": True}
    assert second["userId"] == student.sub
    assert second["timestamp"].endswith("Z") and len(second["timestamp"]) == len("2026-11-26T17:00:00.123Z")


# --- Delivery state machine -----------------------------------------------------------------------------------------


def test_delivery_posts_to_the_scores_endpoint_before_the_query_string(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    update = record(link, make_student(link))
    assert services.deliver_score_update(update.pk) == State.DELIVERED
    (post,) = stub_lms.requests_to("POST", "/lineitems/7/lineitem/scores")
    assert post.path == "/lineitems/7/lineitem/scores?type_id=3"
    assert post.headers["Content-Type"] == "application/vnd.ims.lis.v1.score+json"
    update.refresh_from_db()
    assert update.delivered_at is not None and update.attempts == 1 and update.last_status_code == 200
    assert update.line_item.url == stub_lms.url("/lineitems/7/lineitem?type_id=3")


def test_a_delivered_row_is_never_sent_again(stub_lms):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    services.deliver_score_update(update.pk)
    assert services.deliver_score_update(update.pk) == State.DELIVERED
    assert services.deliver_score_update(update.pk, ignore_schedule=True) == State.DELIVERED
    assert len(scores_posted(stub_lms)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(stub_lms, clock, status):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", status, "busy")
    assert services.deliver_score_update(update.pk) == State.WAITING
    update.refresh_from_db()
    assert update.attempts == 1 and update.last_status_code == status
    assert update.next_attempt_at > clock.now
    assert "error" in update.last_error
    # Not due yet: a duplicate task does nothing.
    assert services.deliver_score_update(update.pk) == "not_due"
    clock.advance((update.next_attempt_at - clock.now).total_seconds())
    assert services.deliver_score_update(update.pk) == State.DELIVERED
    assert len(scores_posted(stub_lms)) == 2
    assert scores_posted(stub_lms)[0] == scores_posted(stub_lms)[1]  # same payload, same timestamp


def test_429_waits_at_least_retry_after(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 429, "slow down", headers={"Retry-After": "120"})
    assert services.deliver_score_update(update.pk) == State.WAITING
    update.refresh_from_db()
    assert update.next_attempt_at - clock.now >= timedelta(seconds=120)
    assert "slow down" in update.last_error


def test_canvas_rate_limit_403_is_retried(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 403, "403 Forbidden (Rate Limit Exceeded)")
    assert services.deliver_score_update(update.pk) == State.WAITING


@override_settings(LTI_HTTP_TIMEOUT_S=0.3)
def test_a_timeout_is_retried(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 200, {}, delay_s=1.0)
    assert services.deliver_score_update(update.pk) == State.WAITING
    update.refresh_from_db()
    assert "did not answer within" in update.last_error


def test_a_connection_failure_is_retried(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.stop()  # the LMS is down
    assert services.deliver_score_update(update.pk) == State.WAITING
    update.refresh_from_db()
    assert "could not be reached" in update.last_error


@override_settings(GRADEBOOK_RETRY_BUDGET_S=24 * 3600, GRADEBOOK_BACKOFF_BASE_S=10, GRADEBOOK_BACKOFF_CAP_S=1800)
def test_gives_up_after_the_retry_budget_and_says_so(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.stop()
    outcomes = []
    for _ in range(200):
        outcome = services.deliver_score_update(update.pk)
        outcomes.append(outcome)
        if outcome != State.WAITING:
            break
        update.refresh_from_db()
        clock.advance((update.next_attempt_at - clock.now).total_seconds())
    update.refresh_from_db()
    assert update.state == State.REFUSED
    assert update.last_error.startswith("Gave up after")
    elapsed = clock.now - update.created_at
    # It kept trying for (almost) the whole day, never longer than the budget.
    assert timedelta(hours=23) <= elapsed <= timedelta(hours=24)
    assert services.sync_status(link)[update.lti_user_id]["state"] == "refused"


# What Moodle 4.5.6 answers, as seen from a real one: a body of `[]`, the message in the HTTP status line.
MOODLE_409 = {"body": "[]", "reason": "Refusing score with an earlier timestamp for item 2 and user 4"}
MOODLE_400 = {"body": "[]", "reason": 'Incorrect score received{"userId": "5", "scoreGiven": 1, "scoreMaximum": 10}'}


def test_moodle_409_on_a_retry_means_already_applied(stub_lms, clock):
    link = make_placement(stub_lms, family="moodle")
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 504, "gateway timeout")  # it may have gone through
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 409, **MOODLE_409)
    services.deliver_score_update(update.pk)
    assert services.deliver_score_update(update.pk, ignore_schedule=True) == State.DELIVERED
    update.refresh_from_db()
    assert "already had this score" in update.last_error


def test_canvas_400_before_last_updated_on_a_retry_is_not_a_failure(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 503)
    stub_lms.queue(
        "POST", "/lineitems/7/lineitem/scores", 400, '{"errors":[{"message":"Score timestamp before last updated"}]}'
    )
    services.deliver_score_update(update.pk)
    assert services.deliver_score_update(update.pk, ignore_schedule=True) == State.DELIVERED
    assert services.sync_status(link)[update.lti_user_id]["state"] == "delivered"


def test_a_stale_timestamp_on_the_first_attempt_is_shown_to_the_instructor(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", 409, **MOODLE_409)
    assert services.deliver_score_update(update.pk) == State.REFUSED
    status = services.sync_status(link)[update.lti_user_id]
    assert status["state"] == "refused"
    assert "newer grade" in status["detail"] and "Send all grades again" in status["detail"]


@pytest.mark.parametrize(
    ("family", "status", "answer", "words"),
    [
        (
            "canvas",
            422,
            {"body": '{"errors":{"message":"User not found in course or is not a student"}}'},
            "not (or no longer) a student",
        ),
        ("moodle", 400, MOODLE_400, "not enrolled"),
        ("canvas", 404, {"body": '{"errors":[{"message":"The specified resource does not exist."}]}'}, "concluded"),
        ("canvas", 403, {"body": "insufficient scope"}, "administrator"),
    ],
)
def test_permanent_refusals_are_explained_and_not_retried(stub_lms, clock, family, status, answer, words):
    link = make_placement(stub_lms, family=family)
    update = record(link, make_student(link))
    stub_lms.queue("POST", "/lineitems/7/lineitem/scores", status, **answer)
    assert services.deliver_score_update(update.pk) == State.REFUSED
    update.refresh_from_db()
    assert words in update.last_error
    assert "Send all grades again" in update.last_error
    clock.advance(3600)
    assert services.deliver_score_update(update.pk) == State.REFUSED
    assert services.enqueue_due_scores() == 0
    assert len(scores_posted(stub_lms)) == 1


def test_an_expired_token_is_refreshed_once(stub_lms):
    link = make_placement(stub_lms)
    student = make_student(link)
    services.deliver_score_update(record(link, student, 1.0).pk)
    stub_lms.revoke_tokens()  # the platform forgot the token the tool has cached
    assert services.deliver_score_update(record(link, student, 2.0).pk) == State.DELIVERED
    assert len(stub_lms.token_requests) == 2
    assert len(scores_posted(stub_lms)) == 3  # the refused one, then the retry with the new token


def test_superseded_at_claim_time_is_not_sent(stub_lms, clock):
    link = make_placement(stub_lms)
    student = make_student(link)
    old = record(link, student, 1.0)
    record(link, student, 2.0)
    assert services.deliver_score_update(old.pk) == State.SUPERSEDED
    assert scores_posted(stub_lms) == []


def test_a_row_leased_to_another_worker_is_left_alone_until_the_lease_ends(stub_lms, clock):
    link = make_placement(stub_lms)
    update = record(link, make_student(link))
    ScoreUpdate.objects.filter(pk=update.pk).update(claimed_until=clock.now + timedelta(seconds=30))
    assert services.deliver_score_update(update.pk) == "busy"
    assert services.enqueue_due_scores() == 0
    clock.advance(31)  # that worker died: its lease ran out
    assert services.deliver_score_update(update.pk) == State.DELIVERED


def test_no_line_item_service_is_a_permanent_refusal_with_advice(stub_lms):
    link = make_placement(stub_lms, lineitem=False)
    link.context.lineitems_url = ""
    link.context.save()
    update = record(link, make_student(link))
    assert services.deliver_score_update(update.pk) == State.REFUSED
    update.refresh_from_db()
    assert "no gradebook column" in update.last_error


def test_line_item_is_found_by_resource_link_and_tag_or_created_once(stub_lms):
    link = make_placement(stub_lms, lineitem=False)
    stub_lms.lineitems.append(
        {"id": stub_lms.url("/lineitems/9/lineitem"), "resourceLinkId": "another-link", "label": "Other"}
    )
    first = record(link, make_student(link))
    second = record(link, make_student(link))
    assert services.deliver_score_update(first.pk) == State.DELIVERED
    assert services.deliver_score_update(second.pk) == State.DELIVERED
    creates = [c for c in stub_lms.seen if c.method == "POST" and c.path == "/lineitems"]
    assert len(creates) == 1
    created = creates[0].body
    assert created["resourceLinkId"] == link.resource_link_id
    assert created["tag"] == "resnet-challenges" and created["scoreMaximum"] == 5.0
    assert created["submissionReview"]["reviewableStatus"] == ["InProgress", "Submitted", "Completed"]
    (lookup,) = [s for s in stub_lms.seen if s.method == "GET" and s.path.startswith("/lineitems")]
    assert f"resource_link_id={link.resource_link_id}" in lookup.path
    assert LineItem.objects.get(resource_link=link).url == stub_lms.url("/lineitems/2/lineitem?type_id=3")
    assert len(stub_lms.requests_to("POST", "/lineitems/2/lineitem/scores")) == 2


def test_an_existing_line_item_for_the_link_is_reused(stub_lms):
    link = make_placement(stub_lms, lineitem=False)
    stub_lms.lineitems.append(
        {"id": stub_lms.url("/lineitems/5/lineitem?type_id=3"), "resourceLinkId": link.resource_link_id, "tag": "x"}
    )
    update = record(link, make_student(link))
    assert services.deliver_score_update(update.pk) == State.DELIVERED
    assert [c for c in stub_lms.seen if c.method == "POST" and c.path == "/lineitems"] == []
    assert stub_lms.requests_to("POST", "/lineitems/5/lineitem/scores?type_id=3")


# --- Backoff and the sweeper ----------------------------------------------------------------------------------------


@override_settings(GRADEBOOK_BACKOFF_BASE_S=10, GRADEBOOK_BACKOFF_CAP_S=1800)
def test_backoff_doubles_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    for attempts in range(1, 15):
        delay = services.backoff_delay(attempts, rng=rng)
        full = min(1800, 10 * 2 ** (attempts - 1))
        assert full / 2 <= delay <= full
    delays = {round(services.backoff_delay(3, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 10  # jitter spreads a crowd of retries
    assert services.backoff_delay(1, retry_after_s=90, rng=rng) >= 90


@override_settings(GRADEBOOK_REQUEUE_AFTER_S=300)
def test_sweeper_re_enqueues_only_due_rows_whose_message_is_missing(
    stub_lms, clock, django_capture_on_commit_callbacks
):
    link = make_placement(stub_lms)
    fresh = record(link, make_student(link))  # enqueued just now by record_score
    lost = record(link, make_student(link))
    ScoreUpdate.objects.filter(pk=lost.pk).update(enqueued_at=None)  # the broker lost it
    later = record(link, make_student(link))
    ScoreUpdate.objects.filter(pk=later.pk).update(
        enqueued_at=None, next_attempt_at=clock.now + timedelta(minutes=5)
    )
    done = record(link, make_student(link))
    services.deliver_score_update(done.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.enqueue_due_scores() == 1
    assert len(callbacks) == 1
    assert ScoreUpdate.objects.get(pk=lost.pk).enqueued_at is not None
    clock.advance(301)  # the fresh row's message never ran either
    with django_capture_on_commit_callbacks(execute=False):
        assert services.enqueue_due_scores() == 3  # fresh, later (now due), and lost (its new message is stale too)
    assert ScoreUpdate.objects.get(pk=fresh.pk).enqueued_at == clock.now


@pytest.mark.parametrize(
    ("family", "lineitem_query", "moodle_like"),
    [("moodle", "", True), ("", "?type_id=4", True), ("canvas", "", False), ("", "", False)],
)
def test_moodle_is_known_by_its_product_family_or_its_type_id_urls(stub_lms, family, lineitem_query, moodle_like):
    link = make_placement(
        stub_lms, family="canvas", lineitem_url=stub_lms.url("/lineitems/7/lineitem" + lineitem_query)
    )
    registration = link.context.deployment.registration
    registration.product_family = family
    registration.save()
    assert services.is_moodle_style(link) is moodle_like
    pending = record(link, make_student(link), None, grading="Pending", activity="Submitted")
    assert (pending.state == State.SKIPPED) is moodle_like


@pytest.mark.django_db(transaction=True)
def test_concurrent_scores_of_one_student_are_still_a_second_apart(stub_lms):
    import threading
    import time

    from django.db import connection

    link = make_placement(stub_lms)
    student = make_student(link)
    barrier = threading.Barrier(4)
    errors = []

    def grade(score: float) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                services.record_score(
                    resource_link=link,
                    lti_user=student,
                    score_given=score,
                    score_maximum=5.0,
                    activity_progress="Completed",
                    grading_progress="FullyGraded",
                )
                time.sleep(0.1)  # the grade's own transaction goes on a little: the others must wait, not collide
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grade, args=(float(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    rows = list(ScoreUpdate.objects.filter(lti_user=student).order_by("timestamp"))
    assert len(rows) == 4
    gaps = [b.timestamp - a.timestamp for a, b in zip(rows, rows[1:], strict=False)]
    assert all(gap >= timedelta(seconds=1) for gap in gaps)
    assert [r.state for r in rows] == [State.SUPERSEDED] * 3 + [State.WAITING]  # the newest wins
