"""The tool's own pages for expected errors, in every mode.

With DEBUG on (the demo, development) Django answers an unknown URL, a failed CSRF check, an oversized body, a bad
Host header or an exception in a view with its technical pages: they list every setting and a traceback, inside the
LMS iframe, to a student. Expected errors are not bugs: they get a short page saying what happened, with the right
status, whatever DEBUG says. Genuine bugs still reach Django's 500 handling (the traceback in development).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger(__name__)
TITLES = {400: "This request is not valid", 403: "Not allowed", 404: "Not found", 413: "Too large", 503: "Busy"}


def _back(request: HttpRequest) -> str:
    """The page the request came from, when it is one of ours (a form's page: where to try again)."""
    referer = request.headers.get("Referer", "")
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    safe = url_has_allowed_host_and_scheme(referer, allowed_hosts={host}, require_https=request.is_secure())
    return referer if referer and safe else ""


def error_page(request: HttpRequest, message: str, status: int, *, title: str = "") -> HttpResponse:
    title = title or TITLES.get(status, "Something went wrong")
    try:
        # The player's error template, by name: config sits below the apps and imports none of them.
        context = {"title": title, "message": message, "back": _back(request), "status": status}
        return render(request, "quizzes/error.html", context, status=status)
    except Exception:  # noqa: BLE001 - an error page must not fail into another error
        # E.g. static files not collected yet on a new server: a bare page still says what happened.
        logger.exception("error page could not be rendered", extra={"path": request.path[:200], "status": status})
        body = f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        return HttpResponse(body, status=status)


def too_large(request: HttpRequest) -> HttpResponse:
    limit_kib = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
    code_kib = settings.GRADING_CODE_LIMIT_BYTES // 1024
    return error_page(
        request,
        f"What you sent is too large: this tool accepts at most {limit_kib} KiB in one form (code answers: at most "
        f"{code_kib} KiB). Nothing was stored; go back, shorten it and send it again.",
        413,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, "The request could not be understood; nothing was stored.", 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, "You are not allowed to see this page.", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, "There is no page at this address.", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_page(request, "Something went wrong on our side; it has been logged. Try again in a moment.", 500)


def busy(request: HttpRequest) -> HttpResponse:
    message = "The tool is busy or its database is unavailable. Nothing was lost; try again in a moment."
    response = error_page(request, message, 503)
    response["Retry-After"] = "5"
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: usually an old page (the session expired) or cookies blocked in the LMS iframe. Django has
    logged the reason on django.security.csrf."""
    return error_page(
        request,
        "This form has expired or your browser did not send its cookie. Nothing was stored: reload the page (or "
        "launch the activity again from your course) and send it again.",
        403,
        title="Form expired",
    )


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django itself ignores a malformed Content-Length and reads no body


def _unknown_url(request: HttpRequest) -> bool:
    try:
        resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return True
    return False


class ExpectedErrorsMiddleware:
    """Answer expected errors with the tool's pages before Django's DEBUG pages can: a Host not allowed, an unknown
    URL (404), a form CSRF would fail to parse (a body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413; too many fields: 400),
    and exceptions views raise for refusals (Http404, PermissionDenied, SuspiciousOperation, and OperationalError: a
    locked or unavailable database, 503).

    Sits inside LtiFrameMiddleware (its pages need the LMS frame-ancestors), outside CommonMiddleware (whose
    APPEND_SLASH redirect must still turn a 404 into a redirect before the 404 page is chosen) and before
    CsrfViewMiddleware (its process_view runs first).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()  # CommonMiddleware asks next, and would raise it into Django's DEBUG page
        except DisallowedHost as exc:
            return self.process_exception(request, exc)
        response = self.get_response(request)
        if response.status_code == 404 and _unknown_url(request):
            return page_not_found(request)
        return response

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        """Parse the form before CSRF does: what it raises there bypasses process_exception. Views exempt from CSRF
        read their own body (the LTI launch answers its own "too large"); what they raise reaches process_exception."""
        if request.method != "POST" or getattr(view, "csrf_exempt", False):
            return None
        if _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return too_large(request)
        try:
            request.POST  # noqa: B018
        except SuspiciousOperation as exc:
            return self.process_exception(request, exc)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        if isinstance(exception, RequestDataTooBig):
            return too_large(request)
        if isinstance(exception, SuspiciousOperation):
            # DisallowedHost and friends: logged where Django logs them, on the security logger.
            logging.getLogger(f"django.security.{type(exception).__name__}").warning(str(exception))
            if isinstance(exception, DisallowedHost):
                return error_page(request, "This tool is not served at that host name.", 400)
            return bad_request(request, exception)
        if isinstance(exception, OperationalError):
            logger.error("database unavailable", exc_info=exception, extra={"path": request.path})
            return busy(request)
        return None
