"""Refusals: each carries the HTTP status a view answers with and a message for people; and the one check of a
person's free text."""

from __future__ import annotations

from typing import Any


class QuizError(Exception):
    """A refused request. `status` is the HTTP status a view should answer with; str(error) is the message."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(QuizError):
    status = 400


class NotAllowed(QuizError):
    status = 403


class NotFound(QuizError):
    status = 404


class Refused(QuizError):
    """The request is well-formed but the rules refuse it now (time up, no attempts left, finished...)."""

    status = 409


def _plain_text(value: Any, *, limit: int, what: str) -> str:
    """A person's free text, stripped and cut to `limit`; a NUL character (which no database text can hold) is
    refused."""
    text = str(value or "")
    if "\x00" in text:
        raise InvalidInput(f"The {what} contains a NUL character.")
    return text.strip()[:limit]
