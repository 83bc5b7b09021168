"""Expected errors get the tool's own page, never Django's technical DEBUG page (which lists every setting and a
traceback), in development mode (DEBUG on) as in production; the root URL has a page of its own."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from grading.models import CodeSubmission
from quizzes import services
from quizzes.models import CodeAnswer
from tests.quizzes.factories import PlacementFactory, establish_launch, student_for

pytestmark = pytest.mark.django_db
BLOCK = "resnet-block-projection"
# Phrases of Django's technical 404/500 and CSRF pages.
TECHNICAL = ("DEBUG = True", "Traceback", "Request Method:", "Django settings", "CSRF_FAILURE_VIEW")


@pytest.fixture(params=[True, False], ids=["debug", "production-pages"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _tool_page(response, status: int, *phrases: str) -> str:
    text = response.content.decode()
    assert response.status_code == status, text[:500]
    assert not [t for t in TECHNICAL if t in text], text[:2000]
    assert '<main id="main"' in text  # the tool's base template
    for phrase in phrases:
        assert phrase in text
    return text


def _code_question(client: Client):
    placement = PlacementFactory(mode="timed", slugs=[BLOCK])
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    services.show_question(attempt, BLOCK)
    establish_launch(client, placement.resource_link, user)
    kwargs = {"resource_link_pk": placement.resource_link.pk, "slug": BLOCK}
    return attempt, reverse("quizzes:question", kwargs=kwargs), reverse("quizzes:code", kwargs=kwargs)


def test_three_megabytes_of_code_get_a_clear_413_and_store_nothing(debug):
    client = Client(enforce_csrf_checks=True)  # as a browser: CSRF would parse the body first
    attempt, question_url, code_url = _code_question(client)
    client.get(question_url)
    token = client.cookies["csrftoken"].value
    response = client.post(code_url, {"attempt": attempt.pk, "code": "x = 1\n" * 500_000, "csrfmiddlewaretoken": token})
    _tool_page(response, 413, "too large", "at most 1024 KiB", "64 KiB")
    assert not CodeSubmission.objects.exists() and not CodeAnswer.objects.exists()


def test_the_code_form_states_its_limit_for_the_browser_to_enforce(client):
    attempt, question_url, _ = _code_question(client)
    text = client.get(question_url).content.decode()
    assert "At most 64 KiB of code." in text
    assert 'data-max-bytes="65536"' in text and 'data-limit-message="code-limit-error"' in text
    assert "js/forms.js" in text


def test_a_bad_csrf_token_gets_the_tools_page_with_a_way_back(debug):
    client = Client(enforce_csrf_checks=True)
    attempt, question_url, code_url = _code_question(client)
    form = {"attempt": attempt.pk, "code": "x = 1", "csrfmiddlewaretoken": "forged"}
    response = client.post(code_url, form, HTTP_REFERER=f"http://testserver{question_url}")
    _tool_page(response, 403, "Form expired", "reload the page", f'href="http://testserver{question_url}"')
    # A link back only to our own pages.
    response = client.post(code_url, form, HTTP_REFERER="https://evil.example/phish")
    assert "evil.example" not in _tool_page(response, 403)
    assert not CodeSubmission.objects.exists()


def test_an_unknown_url_gets_the_tools_404_and_missing_slashes_still_redirect(client, debug):
    _tool_page(client.get("/no/such/page/"), 404, "There is no page at this address.")
    _tool_page(client.post("/no/such/page/", {"a": "b"}), 404)
    assert client.get("/devlms").status_code == 301


def test_a_locked_database_gets_a_503_busy_page(client, debug):
    def locked(execute, sql, params, many, context):
        raise OperationalError("database is locked")

    with connection.execute_wrapper(locked):
        response = client.get(reverse("devlms:home"))
    _tool_page(response, 503, "busy", "try again")
    assert response["Retry-After"]


def test_too_many_fields_and_a_foreign_host_get_400_pages(client, debug):
    fields = {f"f{i}": "x" for i in range(500)}
    _tool_page(client.post(reverse("devlms:faults"), fields), 400)
    _tool_page(client.post("/lti/launch/", fields), 400)  # exempt from CSRF: the launch's own page
    _tool_page(client.get("/", HTTP_HOST="evil.example"), 400, "host")


def test_the_root_url_says_what_this_is_and_where_to_go(client, settings):
    settings.DEBUG = True
    text = _tool_page(client.get("/"), 200, "LTI 1.3 tool")
    for path in ("/devlms/", "/lti/register/", "/lti/canvas.json", "/lti/login/", "/lti/launch/", "/lti/jwks/"):
        assert f"http://testserver{path}" in text, path
    assert 'href="http://testserver/healthz"' in text


def test_the_root_url_without_the_development_lms_does_not_offer_it(client, settings):
    settings.DEV_LMS_ENABLED = False
    text = _tool_page(client.get("/"), 200, "/lti/register/")
    assert "development LMS" not in text


def test_an_error_page_that_cannot_render_still_answers_its_own_status(client, settings, debug):
    """A new server whose static files are not collected yet (no manifest): the error page's stylesheet cannot be
    named, yet a refused Host stays a 400 saying why, not a 500."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    settings.STATIC_ROOT = str(settings.BASE_DIR / ".cache" / "no-static-collected-here")
    response = client.get("/", HTTP_HOST="evil.example")
    text = response.content.decode()
    assert response.status_code == 400, text[:500]
    assert "host name" in text and not [t for t in TECHNICAL if t in text]
