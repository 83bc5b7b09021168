"""Instructor pages that act on one student's work (override points, reopen a question or attempt, extend a clock,
reopen what an accommodation would have saved) and the placement's audit trail.

Every view is `launch_required` + `staff_required` (a staff launch of this link; the student a member of its course).
Views parse with quizzes.forms, call a verb of quizzes.actions and redirect to the student's page; a refusal is shown
with its 4xx status and changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lti_tool.models import LtiUser
from lti_tool.sessions import LaunchInfo, launch_required
from quizzes import actions, queries
from quizzes.forms import ExtendForm, OverrideForm, RemoveOverrideForm, ReopenAttemptForm, ReopenForm, form_error
from quizzes.models import Attempt, Placement, QuestionState
from quizzes.services import QuizError, question_clock, refresh_attempt
from quizzes.views import _quiz_error, _user, csv_download, error_page, form_limit, staff_required

AUDIT_PAGE_SIZE = 100


def _students_attempt(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Under `staff_required`: the view gets the `attempt` that `attempt_pk` names if it is this student's in this
    placement, else 404 (the same answer as an id that does not exist)."""

    @functools.wraps(view)
    def wrapper(
        request: HttpRequest, *, placement: Placement, student: LtiUser, attempt_pk: int, **kwargs: Any
    ) -> HttpResponse:
        attempt = (
            Attempt.objects.select_related("placement__challenge_set", "placement__resource_link", "lti_user")
            .filter(pk=attempt_pk, placement=placement, lti_user=student)
            .first()
        )
        if attempt is None:
            return _no_such_attempt(request)
        return view(request, placement=placement, student=student, attempt=attempt, **kwargs)

    return wrapper


def _student_url(resource_link_pk: int, student: LtiUser, attempt: Attempt | None = None) -> str:
    url = reverse("quizzes:student", kwargs={"resource_link_pk": resource_link_pk, "lti_user_pk": student.pk})
    return f"{url}#attempt-{attempt.pk}" if attempt is not None else url


def _no_such_attempt(request: HttpRequest) -> HttpResponse:
    return error_page(request, "There is no such attempt or question for this student.", 404)


def _run(form: Any, act: Callable[[Any], Any]) -> tuple[bool, int, str]:
    """Validate `form` and call `act(form.checked)`: (done, status, error message)."""
    if not form.is_valid():
        return False, 400, ""
    try:
        act(form.checked)
    except QuizError as exc:
        return False, exc.status, exc.message
    return True, 200, ""


def _question_page(
    template: str,
    forms: Callable[[QuestionState, Any], dict[str, Any]],
    act: Callable[[Attempt, QuestionState, LtiUser, str, Any], None],
) -> Callable[..., HttpResponse]:
    """An override or reopen page: GET shows the question's state and the `forms`, POST calls `act` with the one
    posted (its name and what its check returned)."""

    @require_http_methods(["GET", "POST"])
    @launch_required
    @staff_required
    @_students_attempt
    @form_limit()
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return _show_or_act(request, template=template, forms=forms, act=act, **kwargs)

    view.__doc__ = act.__doc__
    return view


def _show_or_act(
    request: HttpRequest,
    *,
    resource_link_pk: int,
    launch: LaunchInfo,
    placement: Placement,
    student: LtiUser,
    attempt: Attempt,
    question: str,
    template: str,
    forms: Callable[[QuestionState, Any], dict[str, Any]],
    act: Callable[[Attempt, QuestionState, LtiUser, str, Any], None],
) -> HttpResponse:
    """The question page behind `_question_page`."""
    state = attempt.states.filter(slug=question).first()
    if state is None:
        return _no_such_attempt(request)
    attempt = refresh_attempt(attempt)  # show the clock's truth: a question past its deadline has expired
    data = request.POST if request.method == "POST" else None
    page_forms = forms(state, data)
    status, error = 200, ""
    if data is not None:
        name = "remove_form" if "remove" in data and "remove_form" in page_forms else "form"
        actor = _user(launch)
        done, status, error = _run(page_forms[name], lambda checked: act(attempt, state, actor, name, checked))
        if done:
            return redirect(_student_url(resource_link_pk, student, attempt))
    attempt.refresh_from_db()
    state.refresh_from_db()
    state.attempt = attempt
    view = queries.question_view(attempt, state)
    return render(
        request,
        template,
        {
            "placement": placement,
            "rl": resource_link_pk,
            "student": student,
            "attempt": attempt,
            "state": state,
            "challenge": view.challenge,
            "label": queries.status_label(attempt, state, for_staff=True),
            "attempts_allowed": view.attempts_allowed,
            "remaining_s": question_clock(state).remaining_s if not attempt.is_finished else None,
            "earned": actions.points_earned(placement, state),
            "history": placement.audit_entries.filter(attempt=attempt, slug=state.slug),
            "error": error,
            **page_forms,
        },
        status=status,
    )


def _override_forms(state: QuestionState, data: Any) -> dict[str, Any]:
    initial = {"points": f"{state.points:g}", "comment": state.override_comment}
    return {
        "form": OverrideForm(data, max_points=state.max_points, initial=initial),
        "remove_form": RemoveOverrideForm(data),
    }


def _override(attempt: Attempt, state: QuestionState, actor: LtiUser, name: str, checked: Any) -> None:
    """Set one question's points by hand with a comment for the student, or remove that override."""
    if name == "remove_form":
        actions.do_remove_override(attempt, state.slug, actor=actor, note=checked)
    else:
        actions.do_override_points(attempt, state.slug, checked, actor=actor)


def _reopen(attempt: Attempt, state: QuestionState, actor: LtiUser, name: str, checked: Any) -> None:
    """Reopen one question for one student with fresh time and/or extra attempts."""
    actions.do_reopen_question(attempt, state.slug, checked, actor=actor)


override = _question_page("quizzes/override.html", _override_forms, _override)
reopen_question = _question_page("quizzes/reopen.html", lambda state, data: {"form": ReopenForm(data)}, _reopen)


def _attempt_action(form_class: type, verb: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """A POST on one attempt from the student's page (reopen it, extend its clock)."""

    @require_POST
    @launch_required
    @staff_required
    @_students_attempt
    @form_limit()
    def view(
        request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, student: LtiUser, attempt: Attempt, **_: Any
    ) -> HttpResponse:
        form = form_class(request.POST)
        actor = _user(launch)
        done, status, error = _run(form, lambda checked: verb(attempt, checked, actor=actor))
        if not done:
            message = error or form_error(form)
            return error_page(request, message, status)
        return redirect(_student_url(resource_link_pk, student, attempt))

    view.__doc__ = verb.__doc__
    return view


reopen_attempt = _attempt_action(ReopenAttemptForm, actions.do_reopen_attempt)
extend_attempt = _attempt_action(ExtendForm, actions.do_extend_attempt)


@require_POST
@launch_required
@staff_required
@form_limit()
def reopen_expired(
    request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement, student: LtiUser
) -> HttpResponse:
    """Reopen what ran out of time before the student's accommodation was granted (offered on the student's page)."""
    try:
        actions.do_reopen_expired(placement, student, actor=_user(launch))
    except QuizError as exc:
        return _quiz_error(request, exc)
    return redirect(_student_url(resource_link_pk, student))


# --- Audit trail ------------------------------------------------------------------------------------------------


@require_GET
@launch_required
@staff_required
def audit_log(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement) -> HttpResponse:
    """Every instructor action in this placement, newest first, 100 a page."""
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or len(raw) > 6:
        return error_page(request, "The page number must be a whole number.", 400)
    paginator = Paginator(queries.audit_entries(placement), AUDIT_PAGE_SIZE)
    return render(
        request,
        "quizzes/audit.html",
        {"placement": placement, "rl": resource_link_pk, "page": paginator.get_page(int(raw))},
    )


@require_GET
@launch_required
@staff_required
def audit_csv(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement) -> HttpResponse:
    """The audit trail as CSV: who, when, what, before and after (JSON), the note."""
    stamp = timezone.now().strftime("%Y%m%d")
    return csv_download(queries.audit_csv_rows(placement), f"audit-{resource_link_pk}-{stamp}.csv")
