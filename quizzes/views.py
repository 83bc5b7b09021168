"""Student player, instructor pages and the deep-linking form. Views parse the request, call a service, render.

Every page behind a resource link is decorated with `launch_required`: the session must have launched that link.
Instructor pages add `staff_required`: a staff launch, and any student they name a member of the launched course.
Refusals are rendered as a page with a clear message and the matching 4xx status; nothing is stored for them.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lti_tool.models import LtiUser, ResourceLink
from lti_tool.sessions import LaunchInfo, launch_required
from quizzes import actions, content, queries, services
from quizzes.forms import AccommodationForm, PlacementForm, form_error
from quizzes.models import Accommodation, Attempt, Placement, QuestionState
from quizzes.services import QuizError

logger = logging.getLogger(__name__)

# Bodies larger than this are refused before parsing: an answer form is a few hundred bytes.
SMALL_FORM_LIMIT_BYTES = 16 * 1024

View = Callable[..., HttpResponse]


# --- Helpers ----------------------------------------------------------------------------------------------------


def error_page(request: HttpRequest, message: str, status: int, *, title: str = "") -> HttpResponse:
    titles = {400: "This request is not valid", 403: "Not allowed", 404: "Not found", 409: "Not accepted",
              413: "Too large"}
    back = ""
    match = request.resolver_match
    if match is not None and "resource_link_pk" in match.kwargs:
        kwargs = {"resource_link_pk": match.kwargs["resource_link_pk"]}
        if "slug" in match.kwargs:
            back = reverse("quizzes:question", kwargs={**kwargs, "slug": match.kwargs["slug"]})
        elif "lti_user_pk" in match.kwargs:
            back = reverse("quizzes:dashboard", kwargs=kwargs)
        else:
            back = reverse("quizzes:player", kwargs=kwargs)
    return render(
        request,
        "quizzes/error.html",
        {
            "title": title or titles.get(status, "Something went wrong"),
            "message": message,
            "status": status,
            "back": back,
        },
        status=status,
    )


def _quiz_error(request: HttpRequest, exc: QuizError) -> HttpResponse:
    return error_page(request, exc.message, exc.status)


def _too_large(request: HttpRequest, limit: int) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return True


def form_limit(limit: int = SMALL_FORM_LIMIT_BYTES) -> Callable[[View], View]:
    """A POST body over `limit` bytes is refused with 413 before anything reads it, so nothing is parsed or stored.
    Goes under `launch_required` / `staff_required`: a stranger learns nothing from the size answer."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST" and _too_large(request, limit):
                return error_page(request, "The submitted form is too large; nothing was stored.", 413)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _resource_link(resource_link_pk: int) -> ResourceLink:
    return ResourceLink.objects.select_related("context__deployment").get(pk=resource_link_pk)


def _placement(resource_link_pk: int, launch: LaunchInfo) -> Placement:
    return services.resolve_placement(_resource_link(resource_link_pk), launch)


def _user(launch: LaunchInfo) -> LtiUser:
    return LtiUser.objects.get(pk=launch.lti_user_pk)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For instructor pages, under `launch_required`: 403 unless this link's launch is staff. The view gets the
    `placement` and, on pages about one student (`lti_user_pk`), the `student`: a member of the launched course
    (queries.course_student), else 404 like an id that does not exist, so walking ids tells nothing."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *, resource_link_pk: int, launch: LaunchInfo, **kwargs: Any) -> HttpResponse:
        if not launch.is_staff:
            return error_page(request, "This page is for instructors of the course.", 403)
        placement = _placement(resource_link_pk, launch)
        if "lti_user_pk" in kwargs:
            kwargs["student"] = queries.course_student(
                placement,
                kwargs.pop("lti_user_pk"),
                registration_pk=launch.registration_pk,
                vouched_sub=launch.for_user_sub,
            )
            if kwargs["student"] is None:
                return error_page(request, "There is no such student in this course.", 404)
        return view(request, resource_link_pk=resource_link_pk, launch=launch, placement=placement, **kwargs)

    return wrapper


def _posted_attempt(request: HttpRequest, placement: Placement, launch: LaunchInfo) -> Attempt:
    """The attempt a form names, checked against the session's user: someone else's id is refused."""
    raw = request.POST.get("attempt", "")
    if not raw.isdigit() or len(raw) > 18:
        raise services.InvalidInput("The form is missing its attempt number; reload the page and try again.")
    attempt = (
        Attempt.objects.select_related("placement__challenge_set", "lti_user").filter(pk=int(raw)).first()
    )
    if attempt is None or attempt.placement_id != placement.pk or attempt.lti_user_id != launch.lti_user_pk:
        raise services.NotAllowed("That attempt is not yours.")
    if attempt.is_finished:
        raise services.Refused("This attempt is finished; nothing more can be submitted.")
    return attempt


def _shuffle_field(placement: Placement) -> str:
    """The settings form's option order for a placement: "" while it follows its mode (so changing the mode brings
    that mode's rule), else the instructor's override."""
    shuffled = bool(placement.rules.get("shuffle_options"))
    if shuffled == bool(content.get_modes().get(placement.mode_slug, {}).get("shuffle_options")):
        return ""
    return "on" if shuffled else "off"


def csv_download(rows: Iterable[Iterable[Any]], filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    csv.writer(response).writerows(rows)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _question_url(resource_link_pk: int, slug: str) -> str:
    return reverse("quizzes:question", kwargs={"resource_link_pk": resource_link_pk, "slug": slug})


def _gradebook_url(resource_link_pk: int) -> str:
    return reverse("lti_tool:gradebook_status", kwargs={"resource_link_pk": resource_link_pk})


# --- Entry points -----------------------------------------------------------------------------------------------


@require_GET
@launch_required
def launch(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    """Where a resource-link launch lands: instructors see the dashboard, students the player."""
    _placement(resource_link_pk, launch)
    name = "quizzes:dashboard" if launch.is_staff else "quizzes:player"
    return redirect(reverse(name, kwargs={"resource_link_pk": resource_link_pk}))


@require_http_methods(["GET", "POST"])
@form_limit()
def deep_link(request: HttpRequest, launch_id: str) -> HttpResponse:
    """The instructor's placement form after a deep-linking launch; POST returns the link to the LMS."""
    from lti_tool.services import DeepLinkItem, deep_linking_response
    from lti_tool.sessions import current_deep_link

    deep_link = current_deep_link(request, launch_id)
    if deep_link is None or deep_link.registration is None:
        return error_page(request, "This deep-linking session has expired. Please start again from your course.", 403)
    if not (deep_link.is_staff or deep_link.may_configure):  # lti_tool.roles: staff and designers
        return error_page(request, "Only instructors and designers can add this activity to a course.", 403)
    challenge_set = content.current_set()
    modes = content.get_modes()
    initial = {
        "title": challenge_set.title,
        "challenges": [c["slug"] for c in challenge_set.challenges],
        "mode": content.get_mode()["slug"],
        "points": f"{sum(c['points'] for c in challenge_set.challenges):g}",
        "exam_minutes": str((modes.get("exam") or {}).get("set_time_limit_s", 900) // 60),
        "shuffle_options": "",
    }
    error = ""
    form = PlacementForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_bound:
        try:
            if not form.is_valid():
                raise services.InvalidInput(form_error(form))
            draft = services.create_placement_draft(
                registration=deep_link.registration,
                context=deep_link.context,
                created_by=deep_link.lti_user,
                challenge_set=challenge_set,
                **form.choices,
            )
        except QuizError as exc:
            error = exc.message
        else:
            item = DeepLinkItem(
                title=draft.title,
                custom={"placement": str(draft.uuid)},
                score_maximum=draft.points if draft.is_graded else None,
                label=draft.title,
                resource_id=str(draft.uuid),
                tag="resnet-challenges",
                text=modes[draft.mode_slug]["description"],
            )
            return deep_linking_response(request, deep_link, [item])
    return render(
        request,
        "quizzes/deep_link.html",
        {"launch_id": launch_id, "challenge_set": challenge_set, "modes": modes, "form": form, "error": error},
        status=400 if error else 200,
    )


# --- Student player ---------------------------------------------------------------------------------------------


@require_GET
@launch_required
def player(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    """The student's overview: start, the list of challenges with their status, finish."""
    placement = _placement(resource_link_pk, launch)
    attempt = queries.current_attempt(placement, launch.lti_user_pk)
    if attempt is not None and not attempt.is_finished:
        attempt = services.refresh_attempt(attempt)
    if attempt is not None and attempt.is_finished and not placement.rules.get("restartable"):
        return redirect(reverse("quizzes:summary", kwargs={"resource_link_pk": resource_link_pk}))
    rows = []
    if attempt is not None and not attempt.is_finished:
        rows = queries.question_views(attempt)
    challenges = [placement.challenge_set.challenge(slug) for slug in placement.challenge_slugs]
    return render(
        request,
        "quizzes/player.html",
        {
            "placement": placement,
            "rl": resource_link_pk,
            "attempt": attempt,
            "rows": rows,
            "challenges": challenges,
            "rules": placement.rules,
            "badge": placement.challenge_set.content.get("badge"),
            "finished_before": attempt is not None and attempt.is_finished,
            "points_visible": attempt is not None and queries.feedback_visible(attempt),
            "may_attempt": _may_attempt(placement, launch),
            "not_a_student": NOT_A_STUDENT_MESSAGE,
        },
    )


NOT_A_STUDENT_MESSAGE = (
    "You are in this course as an observer or designer, not as a student: you can look at this graded activity, but "
    "only students take it."
)


def _may_attempt(placement: Placement, launch: LaunchInfo) -> bool:
    """Graded attempts are for the course's students (lti_tool.roles); staff may try them out."""
    return not placement.is_graded or launch.is_learner or launch.is_staff


@require_POST
@launch_required
def start(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    placement = _placement(resource_link_pk, launch)
    if not _may_attempt(placement, launch):
        return error_page(request, NOT_A_STUDENT_MESSAGE, 403)
    try:
        attempt = services.start_attempt(placement, _user(launch))
    except QuizError as exc:
        return _quiz_error(request, exc)
    first = attempt.states.order_by("position").first()
    target = _question_url(resource_link_pk, first.slug) if first else reverse(
        "quizzes:player", kwargs={"resource_link_pk": resource_link_pk}
    )
    return redirect(target, permanent=False)


def _open_attempt_or_none(placement: Placement, launch: LaunchInfo) -> Attempt | None:
    attempt = queries.current_attempt(placement, launch.lti_user_pk)
    if attempt is not None and not attempt.is_finished:
        attempt = services.refresh_attempt(attempt)
    return attempt


@require_GET
@launch_required
def question(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, slug: str) -> HttpResponse:
    """One challenge. With per-question timers the clock starts only when the student presses Start (a POST)."""
    placement = _placement(resource_link_pk, launch)
    if slug not in placement.challenge_slugs:
        return error_page(request, "That challenge is not part of this activity.", 404)
    attempt = _open_attempt_or_none(placement, launch)
    if attempt is None:
        return redirect(reverse("quizzes:player", kwargs={"resource_link_pk": resource_link_pk}))
    state = attempt.states.get(slug=slug)
    if state.first_shown_at is None and not attempt.is_finished:
        if placement.rules.get("timer") == "per_question":
            return _render_question(request, placement, attempt, state, resource_link_pk, not_started=True)
        state = services.show_question(attempt, slug)
        attempt.refresh_from_db()
    return _render_question(request, placement, attempt, state, resource_link_pk)


def _render_question(
    request: HttpRequest,
    placement: Placement,
    attempt: Attempt,
    state: QuestionState,
    resource_link_pk: int,
    *,
    not_started: bool = False,
    status: int = 200,
    error: str = "",
    code: str | None = None,
) -> HttpResponse:
    view = queries.question_view(attempt, state)
    slugs = placement.challenge_slugs
    index = slugs.index(state.slug)
    latest_code = view.code_answers[-1].submission.code if view.code_answers else view.starter_code
    curves = None
    submissions = []
    for code_answer in view.code_answers:
        submission = code_answer.submission
        show_result = view.feedback_visible and not code_answer.is_pending
        submissions.append(
            {
                "answer": code_answer,
                "submission": submission,
                "show_result": show_result,
                "status_url": reverse("grading:status", kwargs={"submission_id": submission.pk})
                if code_answer.is_pending else "",
                "curves": queries.loss_curves(submission.artifacts) if show_result else None,
                "norms": queries.grad_norms(submission.artifacts) if show_result else None,
                "note": queries.code_result_note(placement, view.state, code_answer) if show_result else "",
            }
        )
        if show_result:
            curves = submissions[-1]["curves"] or curves
    return render(
        request,
        "quizzes/question.html",
        {
            "placement": placement,
            "rules": placement.rules,
            "rl": resource_link_pk,
            "attempt": attempt,
            "q": view,
            "challenge": view.challenge,
            "not_started": not_started,
            "index": index + 1,
            "count": len(slugs),
            "previous_slug": slugs[index - 1] if index > 0 else "",
            "next_slug": slugs[index + 1] if index + 1 < len(slugs) else "",
            "code_text": code if code is not None else latest_code,
            "points_visible": queries.feedback_visible(attempt),  # exam mode: no running score until it closes
            "chosen_letters": [answer.letter for answer in view.answers],  # type: ignore[attr-defined]
            "latest_letter": view.answers[-1].letter if view.answers else "",  # type: ignore[attr-defined]
            "latest_submission": submissions[-1] if submissions else None,
            "earlier_submissions": submissions[:-1],
            "curves": curves,
            "error": error,
            "clock_url": reverse("quizzes:clock", kwargs={"resource_link_pk": resource_link_pk, "slug": state.slug}),
            "code_limit_bytes": settings.GRADING_CODE_LIMIT_BYTES,
            "code_limit_kib": settings.GRADING_CODE_LIMIT_BYTES // 1024,
        },
        status=status,
    )


def _post_guard(request: HttpRequest, placement: Placement, launch: LaunchInfo, slug: str) -> Attempt:
    if slug not in placement.challenge_slugs:
        raise services.NotFound("That challenge is not part of this activity.")
    return _posted_attempt(request, placement, launch)


def _answer_view(handler: Any, limit: int = SMALL_FORM_LIMIT_BYTES, anchor: str = "") -> Any:
    """Wrap a POST handler: size limit, attempt ownership, QuizError -> 4xx page, success -> back to the question
    (at `anchor`, where the result shows, so that the page does not jump to its top)."""

    @require_POST
    @launch_required
    @form_limit(limit)
    def view(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, slug: str) -> HttpResponse:
        placement = _placement(resource_link_pk, launch)
        try:
            attempt = _post_guard(request, placement, launch, slug)
            response = handler(request, attempt, slug)
        except QuizError as exc:
            return _quiz_error(request, exc)
        return response or redirect(_question_url(resource_link_pk, slug) + anchor)

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def _open(request: HttpRequest, attempt: Attempt, slug: str) -> None:
    """Start the question's clock (first show)."""
    services.show_question(attempt, slug)


def _answer(request: HttpRequest, attempt: Attempt, slug: str) -> None:
    """Submit a choice: the opaque id this attempt gave the option (queries.ShownOption), never a content key."""
    choice = request.POST.get("choice")
    if not choice:
        raise services.InvalidInput("Choose one of the options before submitting.")
    if len(choice) > 8:
        raise services.InvalidInput("That is not one of this question's options.")
    services.submit_option(attempt, slug, choice)


def _hint(request: HttpRequest, attempt: Attempt, slug: str) -> None:
    """Reveal the hint."""
    services.take_hint(attempt, slug)


def _code(request: HttpRequest, attempt: Attempt, slug: str) -> None:
    """Submit code for grading."""
    code = request.POST.get("code")
    if code is None:
        raise services.InvalidInput("The form is missing the code field.")
    services.submit_code(attempt, slug, code.replace("\r\n", "\n"))


open_question = _answer_view(_open)
answer = _answer_view(_answer)
hint = _answer_view(_hint)
code = _answer_view(_code, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, anchor="#code-result")


@require_GET
@launch_required
def clock(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, slug: str) -> JsonResponse:
    """The server's clock for one question (for countdowns in other tabs); never contains answers."""
    placement = _placement(resource_link_pk, launch)
    attempt = _open_attempt_or_none(placement, launch)
    if attempt is None or slug not in placement.challenge_slugs:
        return JsonResponse({"error": "not found"}, status=404)
    state = attempt.states.get(slug=slug)
    view = queries.question_view(attempt, state)
    return JsonResponse(
        {
            "remaining_s": view.remaining_s,
            "status": view.status,
            "attempts_left": view.attempts_left,
            "can_answer": view.can_answer,
            "attempt_finished": attempt.is_finished,
        }
    )


@require_http_methods(["GET", "POST"])
@launch_required
@form_limit()
def finish(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    """GET: the confirmation step, naming what is still unanswered (rendered here, so it needs no JavaScript).
    POST (the confirmation's form): finish the attempt."""
    placement = _placement(resource_link_pk, launch)
    if request.method == "GET":
        return _finish_confirmation(request, placement, launch, resource_link_pk)
    try:
        attempt = _posted_attempt(request, placement, launch)
        services.finish_attempt(attempt)
    except QuizError as exc:
        return _quiz_error(request, exc)
    return redirect(reverse("quizzes:summary", kwargs={"resource_link_pk": resource_link_pk}))


def _finish_confirmation(
    request: HttpRequest, placement: Placement, launch: LaunchInfo, resource_link_pk: int
) -> HttpResponse:
    attempt = _open_attempt_or_none(placement, launch)
    if attempt is None:
        return redirect(reverse("quizzes:player", kwargs={"resource_link_pk": resource_link_pk}))
    if attempt.is_finished:
        return redirect(reverse("quizzes:summary", kwargs={"resource_link_pk": resource_link_pk}))
    rows = queries.question_views(attempt)
    return render(
        request,
        "quizzes/finish.html",
        {
            "placement": placement,
            "rl": resource_link_pk,
            "attempt": attempt,
            "unanswered": [row for row in rows if row.state.attempts_used == 0],
            "pending": [row for row in rows if row.pending],
            "rules": placement.rules,
        },
    )


@require_GET
@launch_required
def summary(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo) -> HttpResponse:
    """Score, time used, attempts and badge of the student's latest attempt."""
    placement = _placement(resource_link_pk, launch)
    attempt = queries.current_attempt(placement, launch.lti_user_pk)
    if attempt is None:
        return redirect(reverse("quizzes:player", kwargs={"resource_link_pk": resource_link_pk}))
    attempt = services.refresh_attempt(attempt)
    now = timezone.now()
    rows = queries.question_views(attempt, now)
    for row in rows:
        row.state.attempt = attempt
        row.time_used = queries.time_used_s(row.state, now)  # type: ignore[attr-defined]
    scaled = attempt.score / attempt.max_score * placement.points if attempt.max_score else 0.0
    return render(
        request,
        "quizzes/summary.html",
        {
            "placement": placement,
            "rl": resource_link_pk,
            "attempt": attempt,
            "rows": rows,
            "time_used": queries.attempt_time_used_s(attempt, now),
            "scaled": scaled,
            "feedback_visible": queries.feedback_visible(attempt),
            "badge": placement.challenge_set.content.get("badge"),
            "rules": placement.rules,
        },
    )


# --- Instructor -------------------------------------------------------------------------------------------------


@require_GET
@launch_required
@staff_required
def dashboard(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement) -> HttpResponse:
    """Placement settings, results per student and challenge, per-challenge statistics."""
    now = timezone.now()
    challenges = [placement.challenge_set.challenge(slug) for slug in placement.challenge_slugs]
    return render(
        request,
        "quizzes/dashboard.html",
        {
            "placement": placement,
            "rl": resource_link_pk,
            "rules": placement.rules,
            "challenges": challenges,
            "rows": queries.results_table(placement, now),
            "not_started": queries.not_started(placement),
            "stats": queries.challenge_stats(placement, now),
            "gradebook_url": _gradebook_url(resource_link_pk),
            "modes": content.get_modes(),
            "has_attempts": placement.attempts.exists(),
            "shuffle_choice": _shuffle_field(placement),
        },
    )


@require_POST
@launch_required
@staff_required
@form_limit()
def placement_settings(
    request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement
) -> HttpResponse:
    """Change mode, challenges or points while nobody has started."""
    form = PlacementForm(request.POST)
    if not form.is_valid():
        return error_page(request, form_error(form), 400)
    try:
        services.update_placement(placement, actor=_user(launch), **form.choices)
    except QuizError as exc:
        return _quiz_error(request, exc)
    return redirect(reverse("quizzes:dashboard", kwargs={"resource_link_pk": resource_link_pk}))


@require_GET
@launch_required
@staff_required
def student(
    request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement, student: LtiUser
) -> HttpResponse:
    """One student's history: answers, submitted code, grader feedback; the accommodation form. Also the submission
    review (LtiSubmissionReviewRequest, URL name `review`): the instructor's view of one student's work."""
    attempts = queries.student_history(placement, student.pk)
    now = timezone.now()
    for attempt in attempts:
        for state in attempt.states.all():
            state.attempt = attempt
            state.time_used = queries.time_used_s(state, now)
            state.challenge = placement.challenge_set.challenge(state.slug) or {}
            state.label = queries.status_label(attempt, state, for_staff=True)
            if state.kind == QuestionState.Kind.CHOICE:  # the order and letters this student saw, by content key
                state.shown = queries.shown_options(state, state.challenge)
                letters = {option.key: option.letter for option in state.shown}
                for answer in state.answers.all():
                    answer.letter = letters.get(answer.choice, answer.choice)
            for code_answer in state.code_answers.all():
                code_answer.curves = queries.loss_curves(code_answer.submission.artifacts)
                code_answer.norms = queries.grad_norms(code_answer.submission.artifacts)
    accommodation = Accommodation.objects.filter(placement=placement, lti_user=student).first()
    return render(
        request,
        "quizzes/student.html",
        {
            "placement": placement,
            "rl": resource_link_pk,
            "student": student,
            "attempts": attempts,
            "accommodation": accommodation,
            "gradebook_url": _gradebook_url(resource_link_pk),
            # What ran out of time before the accommodation was granted: offered to reopen.
            "expired": actions.expired_before_accommodation(attempts[-1] if attempts else None, accommodation),
        },
    )


@require_POST
@launch_required
@staff_required
@form_limit()
def accommodation(
    request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement, student: LtiUser
) -> HttpResponse:
    """Grant extra time (multiplier) and/or extra attempts to one student."""
    form = AccommodationForm(request.POST)
    if not form.is_valid():
        return error_page(request, form_error(form), 400)
    try:
        services.grant_accommodation(
            placement, student, granted_by=LtiUser.objects.filter(pk=launch.lti_user_pk).first(), **form.cleaned_data
        )
    except QuizError as exc:
        return _quiz_error(request, exc)
    return redirect(
        reverse("quizzes:student", kwargs={"resource_link_pk": resource_link_pk, "lti_user_pk": student.pk})
    )


@require_GET
@launch_required
@staff_required
def export_csv(request: HttpRequest, resource_link_pk: int, launch: LaunchInfo, placement: Placement) -> HttpResponse:
    """Results as CSV: one row per student attempt and challenge."""
    return csv_download(queries.csv_rows(placement), f"results-{resource_link_pk}.csv")
