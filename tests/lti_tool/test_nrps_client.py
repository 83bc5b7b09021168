"""NRPS roster sync: every page through `Link: rel="next"` with the URL's case kept, Membership rows from it."""

from __future__ import annotations

import pytest

from lti_tool.gradebook import ags, nrps, services
from lti_tool.models import LtiUser, Membership
from lti_tool.roles import course_roles
from tests.factories import LtiUserFactory, MembershipFactory
from tests.lti_tool import gradebook_support
from tests.lti_tool.gradebook_support import Canned, make_placement

pytestmark = pytest.mark.django_db
stub_lms = gradebook_support.stub_lms

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
PATH = "/CourseSection/7/bindings/3/memberships"
# These rosters come from a Moodle (mixed-case URLs, the whole roster unless pages are asked for): the tool asks for
# no page size. Canvas, which pages by 10 unless asked, is at the end of the file.


def member(sub, roles, **extra):
    return {"user_id": sub, "roles": roles, "status": "Active", **extra}


def serve_pages(stub, pages):
    """Page i links to page i+1 with a mixed-case URL, as Moodle writes it."""
    for number, members in enumerate(pages, start=1):
        path = PATH if number == 1 else f"{PATH}?Page={number}&Limit=2"
        headers = {}
        if number < len(pages):
            headers["Link"] = f'<{stub.url(PATH)}?Page={number + 1}&Limit=2>; rel="next"'
        stub.pages[path] = Canned(200, {"id": stub.url(path), "members": members}, headers)


def test_roles_are_read_from_full_and_short_uris():
    assert course_roles([LEARNER, TA, "Instructor", 7, ""]).names == {"Learner", "Instructor"}


def test_sync_follows_every_page_keeping_the_url_case(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    serve_pages(
        stub_lms,
        [
            [member("s1", [LEARNER], name="Ada Lovelace", email="ada@example.edu"), member("t1", [INSTRUCTOR])],
            [member("s2", [LEARNER], given_name="Alan", family_name="Turing"), member("ta", [TA])],
            [member("s3", [LEARNER]), member("gone", [LEARNER], status="Inactive")],
        ],
    )
    assert services.sync_roster(link.context) == 5
    fetched = [s.path for s in stub_lms.seen if s.method == "GET"]
    assert fetched == [PATH, f"{PATH}?Page=2&Limit=2", f"{PATH}?Page=3&Limit=2"]
    assert all(s.headers["Accept"] == nrps.MEDIA_MEMBERSHIPS for s in stub_lms.seen if s.method == "GET")
    token_scopes = {form["scope"] for form in stub_lms.token_requests}
    assert token_scopes == {ags.SCOPE_NRPS}
    members = {m.lti_user.sub: m for m in Membership.objects.filter(context=link.context).select_related("lti_user")}
    assert set(members) == {"s1", "t1", "s2", "ta", "s3"}
    assert all(m.from_roster for m in members.values())
    assert members["s1"].is_learner and not members["s1"].is_staff
    assert members["t1"].is_staff and members["ta"].is_staff and not members["ta"].is_learner
    assert members["s1"].lti_user.display_name == "Ada Lovelace"
    assert members["s2"].lti_user.display_name == "Alan Turing"


def test_a_membership_from_a_launch_is_not_taken_over_by_the_roster(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    registration = link.context.deployment.registration
    user = LtiUserFactory(registration=registration, sub="s1", name="Ada L.")
    MembershipFactory(context=link.context, lti_user=user, roles=[LEARNER], is_learner=True, from_roster=False)
    serve_pages(stub_lms, [[member("s1", [LEARNER], name="")]])
    assert services.sync_roster(link.context) == 1
    membership = Membership.objects.get(context=link.context, lti_user=user)
    assert membership.from_roster is False
    assert LtiUser.objects.get(pk=user.pk).name == "Ada L."  # an empty roster name does not erase a known one


def test_a_paging_loop_stops(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    stub_lms.pages[PATH] = Canned(
        200, {"members": [member("s1", [LEARNER])]}, {"Link": f'<{stub_lms.url(PATH)}>; rel="next"'}
    )
    assert services.sync_roster(link.context) == 1
    assert len([s for s in stub_lms.seen if s.method == "GET"]) == 1


def test_no_roster_service_or_an_lms_error_is_reported_and_changes_nothing(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    stub_lms.queue("GET", PATH, 503, "maintenance")
    with pytest.raises(ags.ServiceError) as failure:
        services.sync_roster(link.context)
    assert failure.value.retryable
    link.context.memberships_url = ""
    with pytest.raises(ags.ServiceError, match="no roster service"):
        services.sync_roster(link.context)
    assert Membership.objects.count() == 0


def test_a_next_link_to_another_host_is_not_followed(stub_lms):
    link = make_placement(stub_lms, family="moodle")
    stub_lms.pages[PATH] = Canned(
        200, {"members": [member("s1", [LEARNER])]}, {"Link": '<https://evil.example.com/steal>; rel="next"'}
    )
    with pytest.raises(ags.ServiceError, match="another host"):
        services.sync_roster(link.context)
    assert Membership.objects.count() == 0


def test_an_oversized_answer_is_refused(stub_lms, monkeypatch):
    link = make_placement(stub_lms, family="moodle")
    monkeypatch.setattr(ags, "MAX_RESPONSE_BYTES", 2000)
    stub_lms.pages[PATH] = Canned(200, {"members": [member(f"s{i}", [LEARNER]) for i in range(100)]})
    with pytest.raises(ags.ServiceError, match="more data than the tool accepts"):
        services.sync_roster(link.context)


def test_a_roster_holding_a_nul_character_is_refused_and_changes_nothing(stub_lms):
    # No database text can hold a NUL: the page is refused as a whole, never stored half-way.
    link = make_placement(stub_lms, family="moodle")
    serve_pages(stub_lms, [[member("s1", [LEARNER], name="Ada"), member("s2", [LEARNER], name="Al\u0000an")]])
    with pytest.raises(ags.ServiceError, match="NUL character") as failure:
        services.sync_roster(link.context)
    assert not failure.value.retryable
    assert Membership.objects.count() == 0


# --- Page sizes and truncated rosters -----------------------------------------------------------------------------


def test_roster_pages_are_asked_large_from_canvas_and_left_alone_when_the_url_names_a_size(stub_lms):
    link = make_placement(stub_lms, family="canvas")
    stub_lms.pages[f"{PATH}?limit={nrps.PAGE_SIZE}"] = Canned(200, {"members": [member("s1", [LEARNER])]})
    assert services.sync_roster(link.context) == 1
    link.context.memberships_url = stub_lms.url(f"{PATH}?Limit=50")
    stub_lms.pages[f"{PATH}?Limit=50"] = Canned(200, {"members": [member("s2", [LEARNER])]})
    assert services.sync_roster(link.context) == 1
    fetched = [s.path for s in stub_lms.seen if s.method == "GET"]
    assert fetched == [f"{PATH}?limit={nrps.PAGE_SIZE}", f"{PATH}?Limit=50"]


def test_a_roster_with_more_pages_than_the_tool_reads_is_stored_and_reported(stub_lms, monkeypatch):
    link = make_placement(stub_lms, family="moodle")
    serve_pages(stub_lms, [[member("s1", [LEARNER])], [member("s2", [LEARNER])], [member("s3", [LEARNER])]])
    monkeypatch.setattr(nrps, "MAX_PAGES", 2)
    assert services.sync_roster(link.context) == 2  # what was read is kept...
    assert "roster is incomplete" in nrps.truncated_notice(link.context)  # ...and the instructor is told
    assert "first 2 members" in nrps.truncated_notice(link.context)
    monkeypatch.setattr(nrps, "MAX_PAGES", 3)
    assert services.sync_roster(link.context) == 3
    assert nrps.truncated_notice(link.context) == ""  # read whole: the notice goes
