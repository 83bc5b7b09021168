"""The development LMS's services: AGS line items and scores (Canvas and Moodle semantics), NRPS paging, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from lti_tool.devlms import services
from lti_tool.devlms.models import LineItem, ResourceLink

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)


class Service:
    """The tool's side of AGS/NRPS calls, made with an access token from the platform's token endpoint."""

    def __init__(self, dev_lms, tool_peer, style="canvas", scopes=None):
        self.lms = dev_lms
        self.tool, _ = tool_peer.register(dev_lms, style, scopes=scopes)
        self.token = tool_peer.access_token(dev_lms, self.tool.client_id, scopes)
        self.course = services.get_course("course1")
        self.link = ResourceLink.objects.get(course=self.course, slug="link1")

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def lineitems_url(self):
        return self.lms.platform.lineitems_url(self.course, self.tool)

    @property
    def lineitem_url(self):
        return self.lms.platform.lineitem_url(self.link.line_item, self.tool)

    def scores_url(self, lineitem_url=None):
        base, _, query = (lineitem_url or self.lineitem_url).partition("?")
        return f"{base}/scores" + (f"?{query}" if query else "")

    def score(self, user="student1", when=T0, **fields):
        body = {
            "userId": self.lms.sub(user),
            "scoreGiven": 8,
            "scoreMaximum": 10,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": when.isoformat(),
        }
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        return requests.post(
            self.scores_url(),
            json=body,
            headers={**self.headers, "Content-Type": "application/vnd.ims.lis.v1.score+json"},
            timeout=30,
        )


@pytest.fixture
def canvas(dev_lms, tool_peer):
    return Service(dev_lms, tool_peer, "canvas")


@pytest.fixture
def moodle(dev_lms, tool_peer):
    return Service(dev_lms, tool_peer, "moodle")


class TestBearerTokens:
    def test_a_service_call_needs_a_token(self, canvas):
        response = requests.get(canvas.lineitems_url, timeout=30)
        assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]
        bogus = requests.get(canvas.lineitems_url, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert bogus.status_code == 401

    def test_an_expired_token_is_refused(self, canvas):
        canvas.lms.expire_access_tokens()
        assert requests.get(canvas.lineitems_url, headers=canvas.headers, timeout=30).status_code == 401

    def test_a_token_without_the_scope_is_forbidden(self, dev_lms, tool_peer):
        service = Service(dev_lms, tool_peer, "canvas", scopes=[services.SCOPE_LINEITEM_READONLY])
        assert requests.get(service.lineitems_url, headers=service.headers, timeout=30).status_code == 200
        assert service.score().status_code == 403
        post = requests.post(service.lineitems_url, json={"label": "x", "scoreMaximum": 1}, headers=service.headers)
        assert post.status_code == 403


class TestLineItems:
    def test_lists_the_course_columns_with_filters(self, canvas):
        all_items = requests.get(canvas.lineitems_url, headers=canvas.headers, timeout=30)
        assert all_items.status_code == 200
        assert all_items.headers["Content-Type"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
        assert [i["label"] for i in all_items.json()] == ["ResNet challenges"]
        by_link = requests.get(
            canvas.lineitems_url, params={"resource_link_id": canvas.link.link_id}, headers=canvas.headers
        ).json()
        assert by_link[0]["id"] == canvas.lineitem_url and by_link[0]["resourceLinkId"] == canvas.link.link_id
        assert requests.get(canvas.lineitems_url, params={"tag": "nope"}, headers=canvas.headers).json() == []

    def test_creates_a_column_coupled_to_a_link_without_one(self, canvas):
        link2 = ResourceLink.objects.get(course=canvas.course, slug="link2")
        body = {"label": "Extra", "scoreMaximum": 5, "tag": "t", "resourceId": "r", "resourceLinkId": link2.link_id}
        response = requests.post(canvas.lineitems_url, json=body, headers=canvas.headers, timeout=30)
        assert response.status_code == 201
        created = response.json()
        assert created["label"] == "Extra" and created["tag"] == "t" and created["resourceLinkId"] == link2.link_id
        link2.refresh_from_db()
        assert link2.line_item.label == "Extra"
        fetched = requests.get(created["id"], headers=canvas.headers, timeout=30).json()
        assert fetched == created

    def test_refuses_a_bad_column(self, canvas):
        bodies = [
            {"label": "x"},
            {"scoreMaximum": 5},
            {"label": "x", "scoreMaximum": -1},
            {"label": "", "scoreMaximum": 1},
            {"label": "x", "scoreMaximum": 1, "resourceLinkId": "unknown"},
            ["not", "an", "object"],
        ]
        for body in bodies:
            response = requests.post(canvas.lineitems_url, json=body, headers=canvas.headers, timeout=30)
            assert response.status_code == 400, body
        not_json = requests.post(canvas.lineitems_url, data=b"{", headers=canvas.headers, timeout=30)
        assert not_json.status_code == 400
        assert LineItem.objects.count() == 2  # the two seeded courses' link1 columns

    def test_updates_a_column(self, canvas):
        response = requests.put(
            canvas.lineitem_url, json={"label": "Renamed", "scoreMaximum": 50}, headers=canvas.headers, timeout=30
        )
        assert response.status_code == 200 and response.json()["label"] == "Renamed"
        assert LineItem.objects.get(pk=canvas.link.line_item_id).score_maximum == 50

    def test_an_unknown_column_is_404(self, canvas):
        url = canvas.lineitem_url.replace(f"/lineitems/{canvas.link.line_item_id}/", "/lineitems/999999/")
        assert requests.get(url, headers=canvas.headers, timeout=30).status_code == 404

    def test_moodle_service_urls_need_type_id(self, moodle):
        assert "?type_id=" in moodle.lineitem_url
        assert requests.get(moodle.lineitem_url, headers=moodle.headers, timeout=30).status_code == 200
        bare = moodle.lineitem_url.split("?")[0]
        assert requests.get(bare, headers=moodle.headers, timeout=30).status_code == 400


class TestCanvasScores:
    def test_a_fully_graded_score_is_rescaled_to_the_column(self, canvas):
        response = canvas.score(scoreGiven=8, scoreMaximum=10, comment="4/5 checks")
        assert response.status_code == 200
        result = canvas.lms.result("course1", "link1", "student1")
        assert result["score_given"] == pytest.approx(80.0)
        assert result["comment"] == "4/5 checks" and result["grading_progress"] == "FullyGraded"

    def test_an_earlier_timestamp_is_a_400_and_an_equal_one_is_accepted(self, canvas):
        assert canvas.score(when=T0).status_code == 200
        earlier = canvas.score(when=T0 - timedelta(milliseconds=1), scoreGiven=1)
        assert earlier.status_code == 400 and "before last updated timestamp" in earlier.text
        assert canvas.lms.result()["score_given"] == pytest.approx(80.0)
        assert canvas.score(when=T0, scoreGiven=9).status_code == 200
        assert canvas.lms.result()["score_given"] == pytest.approx(90.0)

    def test_pending_clears_the_score_unless_preserve_score(self, canvas):
        assert canvas.score(when=T0).status_code == 200
        preserved = canvas.score(
            when=T0 + timedelta(seconds=1),
            scoreGiven=None,
            scoreMaximum=None,
            gradingProgress="Pending",
            activityProgress="Submitted",
            **{"https://canvas.instructure.com/lti/submission": {"preserve_score": True}},
        )
        assert preserved.status_code == 200
        assert canvas.lms.result()["score_given"] == pytest.approx(80.0)
        cleared = canvas.score(
            when=T0 + timedelta(seconds=2),
            scoreGiven=None,
            scoreMaximum=None,
            gradingProgress="Pending",
            activityProgress="Submitted",
        )
        assert cleared.status_code == 200
        assert canvas.lms.result()["score_given"] is None

    def test_a_user_not_in_the_course_is_a_422(self, canvas):
        canvas.lms.unenroll("student2")
        response = canvas.score(user="student2")
        assert response.status_code == 422 and "User not found in course" in response.text
        assert canvas.lms.result(user="student2") is None

    def test_an_instructor_is_not_a_student(self, canvas):
        assert canvas.score(user="instructor1").status_code == 422

    def test_a_concluded_course_is_a_404(self, canvas):
        canvas.lms.conclude_course("course1")
        assert canvas.score().status_code == 404

    def test_score_given_needs_score_maximum(self, canvas):
        assert canvas.score(scoreMaximum=None).status_code == 422

    def test_refuses_a_malformed_score(self, canvas):
        malformed = [
            {"timestamp": "yesterday"},
            {"timestamp": "0001-01-01T00:00:00+00:00"},
            {"activityProgress": "Done"},
            {"gradingProgress": "Graded"},
            {"scoreGiven": -1},
            {"scoreGiven": "8"},
            {"userId": None},
            {"comment": "x" * 10_001},
        ]
        for fields in malformed:
            response = canvas.score(**fields)
            assert response.status_code == 400, fields
        assert canvas.lms.result() is None

    def test_every_received_score_is_in_the_history(self, canvas):
        canvas.score(when=T0)
        canvas.score(when=T0 - timedelta(seconds=5))
        canvas.lms.unenroll("student3")
        canvas.score(user="student3")
        history = canvas.lms.scores("course1", "link1")
        assert [(h["user"], h["status"]) for h in history] == [("student1", 200), ("student1", 400), ("student3", 422)]
        assert history[0]["payload"]["scoreGiven"] == 8
        assert [h["status"] for h in canvas.lms.scores("course1", "link1", user="student1")] == [200, 400]


class TestMoodleScores:
    def test_a_timestamp_in_the_same_second_is_a_409(self, moodle):
        assert moodle.score(when=T0).status_code == 200
        later_same_second = moodle.score(when=T0 + timedelta(milliseconds=400), scoreGiven=9)
        assert later_same_second.status_code == 409
        # As Moodle 4.5 does: the message in the status line, `[]` as the body.
        assert later_same_second.reason.startswith("Refusing score with an earlier timestamp for item ")
        assert later_same_second.text == "[]"
        assert moodle.score(when=T0 - timedelta(seconds=3)).status_code == 409
        assert moodle.lms.result()["score_given"] == pytest.approx(80.0)
        assert moodle.score(when=T0 + timedelta(seconds=1), scoreGiven=9).status_code == 200
        assert moodle.lms.result()["score_given"] == pytest.approx(90.0)

    def test_only_fully_graded_keeps_a_score(self, moodle):
        assert moodle.score(when=T0).status_code == 200
        pending = moodle.score(
            when=T0 + timedelta(seconds=1),
            gradingProgress="Pending",
            **{"https://canvas.instructure.com/lti/submission": {"preserve_score": True}},
        )
        assert pending.status_code == 200
        assert moodle.lms.result()["score_given"] is None

    def test_score_maximum_defaults_to_one(self, moodle):
        assert moodle.score(scoreGiven=0.5, scoreMaximum=None).status_code == 200
        assert moodle.lms.result()["score_given"] == pytest.approx(50.0)

    def test_a_user_not_in_the_course_is_a_400(self, moodle):
        moodle.lms.unenroll("student2")
        response = moodle.score(user="student2")
        # As Moodle 4.5 does: the message (with the score echoed) in the status line, `[]` as the body.
        assert response.status_code == 400 and response.reason.startswith("Incorrect score received{")
        assert response.text == "[]"

    def test_a_course_can_mimic_canvas_for_a_moodle_tool(self, moodle):
        moodle.lms.set_style("course1", "canvas")
        moodle.course.refresh_from_db()
        assert moodle.score(when=T0).status_code == 200
        assert moodle.score(when=T0 + timedelta(milliseconds=100)).status_code == 200


class TestMemberships:
    def test_pages_follow_link_next_keeping_the_case(self, canvas):
        url = canvas.lms.platform.memberships_url(canvas.course, canvas.tool)
        assert "/CourseSection/" in url
        url += "?limit=3"  # six members: two pages (Canvas's own default is 10 per page)
        members, pages = [], 0
        while url:
            response = requests.get(url, headers=canvas.headers, timeout=30)
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
            members += response.json()["members"]
            pages += 1
            link = response.headers.get("Link", "")
            url = link[1 : link.index(">")] if 'rel="next"' in link else None
            assert url is None or "/CourseSection/" in url
        assert pages == 2
        assert sorted(m["user_id"] for m in members) == sorted(
            canvas.lms.sub(u) for u in ["student1", "student2", "student3", "student4", "student5", "instructor1"]
        )
        roles = {m["user_id"]: m["roles"] for m in members}
        assert roles[canvas.lms.sub("instructor1")] == [services.ROLE_INSTRUCTOR]
        assert {m["email"] for m in members} >= {"student1@devlms.example.edu"}

    def test_moodle_names_roles_by_their_short_names(self, moodle):
        url = moodle.lms.platform.memberships_url(moodle.course, moodle.tool)
        members = requests.get(url, params={"limit": 50}, headers=moodle.headers, timeout=30).json()["members"]
        roles = {m["user_id"]: m["roles"] for m in members}
        assert roles[moodle.lms.sub("instructor1")] == ["Instructor"]
        assert roles[moodle.lms.sub("student1")] == ["Learner"]

    def test_a_lower_cased_path_is_not_found(self, canvas):
        url = canvas.lms.platform.memberships_url(canvas.course, canvas.tool)
        assert requests.get(url.replace("CourseSection", "coursesection"), headers=canvas.headers).status_code == 404

    def test_role_filter_and_limits(self, canvas):
        url = canvas.lms.platform.memberships_url(canvas.course, canvas.tool)
        learners = requests.get(url, params={"role": services.ROLE_LEARNER, "limit": 10}, headers=canvas.headers)
        assert len(learners.json()["members"]) == 5 and "Link" not in learners.headers
        assert requests.get(url, params={"limit": 0}, headers=canvas.headers).status_code == 400
        assert requests.get(url, params={"page": "x"}, headers=canvas.headers).status_code == 400

    def test_needs_the_nrps_scope(self, dev_lms, tool_peer):
        service = Service(dev_lms, tool_peer, "canvas", scopes=[services.SCOPE_SCORE])
        url = dev_lms.platform.memberships_url(service.course, service.tool)
        assert requests.get(url, headers=service.headers, timeout=30).status_code == 403


class TestFaults:
    def test_down_for_the_next_requests_then_back(self, canvas):
        canvas.lms.set_fault("down", count=2)
        assert canvas.score(when=T0).status_code == 503
        assert canvas.score(when=T0).status_code == 503
        assert canvas.lms.fault_hits() == 2
        assert canvas.score(when=T0).status_code == 200
        # A request the LMS never saw is not in its history.
        assert [h["status"] for h in canvas.lms.scores()] == [200]

    def test_429_carries_retry_after(self, canvas):
        canvas.lms.set_fault("429", count=1, seconds=7)
        response = canvas.score()
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
        assert canvas.score().status_code == 200

    def test_5xx_until_cleared(self, canvas):
        canvas.lms.set_fault("5xx")
        for _ in range(3):
            assert canvas.score().status_code == 502
        canvas.lms.clear_faults()
        assert canvas.score().status_code == 200

    def test_the_token_endpoint_is_affected_too(self, canvas, tool_peer):
        canvas.lms.set_fault("down", count=1)
        assert tool_peer.request_token(canvas.lms, canvas.tool.client_id, [services.SCOPE_SCORE]).status_code == 503
        assert tool_peer.request_token(canvas.lms, canvas.tool.client_id, [services.SCOPE_SCORE]).status_code == 200

    def test_slow_still_answers(self, canvas):
        canvas.lms.set_fault("slow", count=1, seconds=0.2)
        assert canvas.score().status_code == 200
        assert canvas.lms.fault_hits() == 1

    def test_launches_are_not_affected(self, canvas):
        canvas.lms.set_fault("down")
        assert requests.get(canvas.lms.platform.url("jwks"), timeout=30).status_code == 200

    def test_the_fault_form_sets_and_clears(self, canvas):
        from tests.lti_support import parse_forms

        session = requests.Session()
        page = session.get(canvas.lms.url, params={"user": "instructor1"}, timeout=30)
        form = next(f for f in parse_forms(page.text, page.url) if f.action.endswith("/devlms/faults/"))
        set_response = session.post(
            form.action,
            data={**form.fields, "mode": "429", "count": "1", "seconds": "2"},
            headers={"Referer": page.url},
            timeout=30,
        )
        assert set_response.status_code == 200
        assert canvas.score().status_code == 429
        bad = session.post(
            form.action, data={**form.fields, "mode": "429", "count": "many"}, headers={"Referer": page.url}, timeout=30
        )
        assert bad.status_code == 400

    def test_refuses_a_bad_fault(self, dev_lms):
        for args in [("sideways", None, None), ("down", 0, None), ("slow", None, -1)]:
            with pytest.raises(services.PlatformError):
                dev_lms.set_fault(*args)
        assert dev_lms.fault_hits() == 0
