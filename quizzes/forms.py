"""Forms of the instructor's POST bodies. Each parses and bounds the request; the rules live in the service it hands
the values to. The actions on one student's work end in the action's own `check_*` (quizzes.actions), whose refusal
becomes the form's error: one set of rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, ProhibitNullCharactersValidator

from quizzes import actions, content
from quizzes.services import MAX_EXTRA_ATTEMPTS, InvalidInput

NOT_NUMBERS = "Points and minutes must be numbers."
ACCOMMODATION_NOT_NUMBERS = "The time multiplier and the extra attempts must be numbers."
MAX_CHOSEN_CHALLENGES = 100


def form_error(form: forms.Form) -> str:
    """An invalid form's errors as one sentence for the error page."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


class _PlainText(forms.CharField):
    """Free text handed to a service that refuses NUL with its own message (quizzes.services.errors._plain_text)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class _Slugs(forms.Field):
    """A list of checkbox values, at most MAX_CHOSEN_CHALLENGES; which ones exist is the service's rule."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        return [str(v) for v in (value or [])][:MAX_CHOSEN_CHALLENGES]


class PlacementForm(forms.Form):
    """A placement's settings, as the deep-linking form and the dashboard's settings form post them; `choices` holds
    the keyword arguments of services.build_placement_config (create_placement_draft, update_placement)."""

    SHUFFLE = {"": None, "on": True, "off": False}  # "" keeps the mode's rule, "on" / "off" override it

    title = _PlainText(required=False, strip=False)
    challenges = _Slugs(required=False)
    mode = forms.CharField(required=False, strip=False)
    points = forms.FloatField(required=False, error_messages={"invalid": NOT_NUMBERS})
    exam_minutes = forms.CharField(required=False)  # read only for a whole-set timer (clean), as the mode decides
    shuffle_options = forms.ChoiceField(
        choices=[(key, key) for key in SHUFFLE],
        required=False,
        error_messages={"invalid_choice": "Choose an option order from the list."},
    )

    choices: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        minutes = None
        if content.get_modes().get(data["mode"], {}).get("timer") == "whole_set" and data["exam_minutes"]:
            try:
                minutes = int(data["exam_minutes"])
            except ValueError:
                raise forms.ValidationError(NOT_NUMBERS) from None
        self.choices = {
            "challenge_slugs": data["challenges"],
            "mode_slug": data["mode"],
            "points": data["points"],
            "title": data["title"],
            "set_time_limit_s": minutes * 60 if minutes is not None else None,
            "shuffle_options": self.SHUFFLE[data["shuffle_options"]],
        }
        return data


class AccommodationForm(forms.Form):
    """Extra time and attempts for one student; empty fields mean none. services.grant_accommodation bounds them."""

    time_multiplier = forms.FloatField(required=False, error_messages={"invalid": ACCOMMODATION_NOT_NUMBERS})
    extra_attempts = forms.IntegerField(required=False, error_messages={"invalid": ACCOMMODATION_NOT_NUMBERS})
    note = _PlainText(required=False, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors:
            data["time_multiplier"] = 1.0 if data["time_multiplier"] is None else data["time_multiplier"]
            data["extra_attempts"] = data["extra_attempts"] or 0
        return data


class _ActionForm(forms.Form):
    """A form whose clean() ends in an action's check_*; `checked` holds what the check returned."""

    checked: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # labels read as written ("Points", not "Points:")
        super().__init__(*args, **kwargs)

    def check(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors:
            try:
                self.checked = self.check(data)
            except InvalidInput as exc:
                raise forms.ValidationError(exc.message) from exc
        return data


class OverrideForm(_ActionForm):
    points = forms.FloatField(label="Points", min_value=0)
    comment = forms.CharField(
        label="Comment for the student (shown with the points, and sent to the LMS gradebook)",
        max_length=actions.MAX_COMMENT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, max_points: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_points = max_points
        field = self.fields["points"]
        field.validators.append(MaxValueValidator(max_points, f"The points must be between 0 and {max_points:g}."))
        field.widget.attrs.update(max=f"{max_points:g}", step="any")

    def check(self, data: dict[str, Any]) -> actions.Override:
        return actions.check_override(data["points"], data["comment"], self.max_points)


class RemoveOverrideForm(_ActionForm):
    note = forms.CharField(label="Note (optional)", max_length=actions.MAX_NOTE_CHARS, required=False)

    def check(self, data: dict[str, Any]) -> str:
        return data["note"]


class ReopenForm(_ActionForm):
    minutes = forms.IntegerField(
        label="Fresh time in minutes (empty: the full time limit again)",
        min_value=1,
        max_value=actions.MAX_REOPEN_MINUTES,
        required=False,
    )
    extra_attempts = forms.IntegerField(
        label="Extra attempts for this question", min_value=0, max_value=MAX_EXTRA_ATTEMPTS, initial=0, required=False
    )
    note = forms.CharField(label="Note (optional, kept in the audit trail)", max_length=actions.MAX_NOTE_CHARS,
                           required=False)

    def check(self, data: dict[str, Any]) -> actions.Reopening:
        return actions.check_reopening(data["minutes"], data.get("extra_attempts") or 0, data["note"])


class ReopenAttemptForm(ReopenForm):
    extra_attempts = None  # a reopened attempt gets time; extra attempts are given per question


class ExtendForm(_ActionForm):
    minutes = forms.IntegerField(label="Minutes to add", min_value=1, max_value=actions.MAX_REOPEN_MINUTES)
    note = forms.CharField(label="Note (optional)", max_length=actions.MAX_NOTE_CHARS, required=False)

    def check(self, data: dict[str, Any]) -> actions.Reopening:
        return actions.check_extension(data["minutes"], data["note"])
