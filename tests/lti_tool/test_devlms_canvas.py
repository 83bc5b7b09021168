"""The development LMS's Canvas behaviours read from Canvas's source: submissions at each score unless the tool says
otherwise (scores_controller.rb), pass/fail, prioritize_non_tool_grade, teachers' hand edits (submission.rb), NRPS
pages of 10 with `limit` (Api::PER_PAGE), and the token endpoint's 30-second rule for `iat` (jwt_validator.rb)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from lti_tool.devlms import services
from lti_tool.devlms.models import Person
from tests.lti_tool.test_devlms_ags import T0, Service

pytestmark = pytest.mark.django_db(transaction=True)
EXT = "https://canvas.instructure.com/lti/submission"


@pytest.fixture
def canvas(dev_lms, tool_peer):
    return Service(dev_lms, tool_peer, "canvas")


class TestSubmissions:
    def test_every_score_is_a_new_submission_unless_it_says_new_submission_false(self, canvas):
        before = timezone.now()
        assert canvas.score(when=T0).status_code == 200
        cell = canvas.lms.result()
        assert cell["attempt"] == 1 and cell["submitted_at"] >= before  # Canvas's default: submitted now
        progress = canvas.score(
            when=T0 + timedelta(seconds=1),
            scoreGiven=None,
            scoreMaximum=None,
            activityProgress="InProgress",
            gradingProgress="Pending",
            **{EXT: {"new_submission": False, "preserve_score": True}},
        )
        assert progress.status_code == 200
        assert canvas.lms.result()["attempt"] == 1 and canvas.lms.result()["score_given"] == pytest.approx(80.0)
        finished = timezone.now() - timedelta(minutes=3)
        assert canvas.score(when=T0 + timedelta(seconds=2), **{EXT: {"submitted_at": finished.isoformat()}}).ok
        cell = canvas.lms.result()
        assert cell["attempt"] == 2 and cell["submitted_at"] == finished

    def test_a_bad_or_future_submitted_at_is_a_400_and_changes_nothing(self, canvas):
        future = canvas.score(**{EXT: {"submitted_at": (timezone.now() + timedelta(minutes=5)).isoformat()}})
        assert future.status_code == 400 and "in the future" in future.text
        garbage = canvas.score(**{EXT: {"submitted_at": "yesterday"}})
        assert garbage.status_code == 400 and "not a valid timestamp" in garbage.text
        assert canvas.score(**{EXT: "not an object"}).status_code == 400
        assert canvas.lms.result() is None

    def test_a_pass_fail_column_passes_any_score_above_zero(self, canvas):
        canvas.lms.set_pass_fail()
        assert canvas.score(when=T0, scoreGiven=0.5, scoreMaximum=10).status_code == 200
        cell = canvas.lms.result()
        assert cell["grade"] == "complete" and cell["score_given"] == pytest.approx(100.0)
        assert canvas.score(when=T0 + timedelta(seconds=1), scoreGiven=0).status_code == 200
        assert canvas.lms.result()["grade"] == "incomplete" and canvas.lms.result()["score_given"] == 0


class TestTeacherEdits:
    def test_a_hand_grade_keeps_the_results_time_and_a_later_score_replaces_it(self, canvas):
        assert canvas.score(when=T0, scoreGiven=8).status_code == 200
        response = canvas.lms.grade_by_hand(55.0)
        assert response.status_code == 200, response.text[:500]
        cell = canvas.lms.result()
        assert cell["score_given"] == 55.0 and cell["grader"] == "teacher" and cell["result_score"] == 55.0
        assert cell["timestamp"] == T0  # update_all(result_score:) leaves updated_at alone
        assert canvas.score(when=T0 + timedelta(seconds=1), scoreGiven=9).status_code == 200
        assert canvas.lms.result()["score_given"] == pytest.approx(90.0)  # silently replaced

    def test_prioritize_non_tool_grade_keeps_any_grade_already_there(self, canvas):
        canvas.lms.grade_by_hand(42.0)  # before the tool ever sent a score
        kept = canvas.score(when=T0, scoreGiven=9, **{EXT: {"prioritize_non_tool_grade": True}})
        assert kept.status_code == 200
        cell = canvas.lms.result()
        assert cell["score_given"] == 42.0 and cell["grader"] == "teacher"
        assert cell["result_score"] == 9  # the tool's result is recorded all the same
        assert cell["attempt"] == 1

    def test_the_results_service_shows_the_teachers_score(self, canvas):
        canvas.score(when=T0, scoreGiven=8)
        canvas.lms.grade_by_hand(30.0)
        url = canvas.lineitem_url + "/results"
        response = requests.get(url, headers=canvas.headers, params={"user_id": canvas.lms.sub("student1")})
        assert response.status_code == 200 and response.json()[0]["resultScore"] == 30.0

    def test_a_bad_hand_grade_is_refused_and_changes_nothing(self, canvas):
        canvas.score(when=T0, scoreGiven=8)
        for bad in ("abc", "-1", "nan", "1e9"):
            session = requests.Session()
            url = canvas.lms.platform.url("gradebook", course_slug="course1")
            page = session.get(url, timeout=30)
            token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
            item = canvas.link.line_item_id
            answer = session.post(
                url, data={"csrfmiddlewaretoken": token, "item": item, "student": "student1", "score": bad}
            )
            assert answer.status_code == 400, bad
        with pytest.raises(services.PlatformError):
            services.grade_by_hand(canvas.link.line_item, Person.objects.get(username="instructor1"), 10.0)
        assert canvas.lms.result()["score_given"] == pytest.approx(80.0)


class TestRosterPages:
    def test_pages_of_ten_unless_limit_asks_for_more_up_to_a_hundred(self, canvas):
        course = services.get_course("course1")
        for number in range(150):
            services.ensure_enrollment(course, services.ensure_person(f"bulk{number:03d}"))
        url = canvas.lms.platform.memberships_url(canvas.course, canvas.tool)

        def sizes(first_url):
            found, next_url = [], first_url
            while next_url:
                response = requests.get(next_url, headers=canvas.headers, timeout=30)
                assert response.status_code == 200
                found.append(len(response.json()["members"]))
                link = response.headers.get("Link", "")
                next_url = link[1 : link.index(">")] if 'rel="next"' in link else None
            return found

        assert sizes(url)[:3] == [10, 10, 10] and sum(sizes(url)) == 156
        assert sizes(f"{url}?limit=1000") == [100, 56]  # capped at Canvas's maximum, never refused


class TestTokenClock:
    @pytest.mark.parametrize(("skew", "refused"), [(25, False), (45, True), (-200, False), (-400, True)])
    def test_an_assertion_dated_over_30_s_ahead_or_5_min_back_is_refused(self, canvas, tool_peer, skew, refused):
        now = int(time.time())
        assertion = tool_peer.assertion(canvas.lms, canvas.tool.client_id, iat=now + skew, exp=now + 300)
        response = tool_peer.request_token(canvas.lms, canvas.tool.client_id, [services.SCOPE_SCORE], assertion)
        if not refused:
            assert response.status_code == 200
            return
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"
        expected = "must not be in the future" if skew > 0 else "must be less than 300 seconds old"
        assert expected in response.json()["error_description"]
