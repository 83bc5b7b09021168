"""Forms of the instructor's actions on one student's work. Each parses and bounds the request, then hands the values
to the action's own `check_*` (quizzes.actions), whose refusal becomes the form's error: one set of rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator

from quizzes import actions
from quizzes.services import MAX_EXTRA_ATTEMPTS, InvalidInput


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
