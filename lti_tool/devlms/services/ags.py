"""Assignment and Grade Services: line items, results, scores (Canvas and Moodle semantics), hand grading."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from lti_tool.devlms.models import Course, Enrollment, LineItem, Person, ResourceLink, Score, ScoreEvent, Style, Tool
from lti_tool.devlms.services.base import (
    ACTIVITY_PROGRESS,
    GRADING_PROGRESS,
    MAX_PAGE_SIZE,
    Platform,
    PlatformError,
    course_style,
    positive_number,
)


def _service_course(course_pk: int, tool: Tool, type_id: str | None) -> Course:
    course = Course.objects.filter(pk=course_pk).first()
    if course is None:
        raise PlatformError(404, "No such course.")
    if course.concluded:
        raise PlatformError(404, "The course is concluded.")
    if course_style(course, tool) == Style.MOODLE and type_id != str(tool.pk):
        raise PlatformError(400, "type_id is missing or wrong (Moodle service URLs carry ?type_id=).")
    return course


def line_item_json(platform: Platform, item: LineItem, tool: Tool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": platform.lineitem_url(item, tool),
        "scoreMaximum": item.score_maximum,
        "label": item.label,
        "resourceId": item.resource_id,
        "tag": item.tag,
    }
    if item.resource_link_id:
        data["resourceLinkId"] = item.resource_link.link_id
    if item.start_date_time:
        data["startDateTime"] = item.start_date_time
    if item.end_date_time:
        data["endDateTime"] = item.end_date_time
    return data


def list_line_items(platform: Platform, tool: Tool, course_pk: int, query: Any) -> list[dict[str, Any]]:
    course = _service_course(course_pk, tool, query.get("type_id"))
    items = course.line_items.select_related("resource_link", "course").order_by("pk")
    if query.get("resource_link_id"):
        items = items.filter(resource_link__link_id=query["resource_link_id"][:64])
    if query.get("resource_id"):
        items = items.filter(resource_id=query["resource_id"][:200])
    if query.get("tag"):
        items = items.filter(tag=query["tag"][:200])
    return [line_item_json(platform, item, tool) for item in items[:MAX_PAGE_SIZE]]


def _line_item_fields(body: Any, course: Course, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PlatformError(400, "The body must be a JSON object.")
    fields: dict[str, Any] = {}
    if "scoreMaximum" in body or not partial:
        if not positive_number(body.get("scoreMaximum")):
            raise PlatformError(400, "scoreMaximum must be a positive number.")
        fields["score_maximum"] = float(body["scoreMaximum"])
    if "label" in body or not partial:
        label = body.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise PlatformError(400, "label must be a non-empty string of at most 200 characters.")
        fields["label"] = label
    for key, attr in (
        ("resourceId", "resource_id"),
        ("tag", "tag"),
        ("startDateTime", "start_date_time"),
        ("endDateTime", "end_date_time"),
    ):
        if key in body:
            if not isinstance(body[key], str) or len(body[key]) > 200:
                raise PlatformError(400, f"{key} must be a string of at most 200 characters.")
            fields[attr] = body[key]
    if body.get("resourceLinkId"):
        link = ResourceLink.objects.filter(course=course, link_id=str(body["resourceLinkId"])[:64]).first()
        if link is None:
            raise PlatformError(400, "resourceLinkId is not a link in this course.")
        fields["resource_link"] = link
    return fields


def create_line_item(platform: Platform, tool: Tool, course_pk: int, query: Any, body: Any) -> dict[str, Any]:
    course = _service_course(course_pk, tool, query.get("type_id"))
    if isinstance(body, dict) and body.get("resourceLinkId") == f"devlms-{course.slug}":
        # Canvas's prepare_line_item_for_ags!: only an assignment's resource link gets a column (course navigation
        # is not one).
        raise PlatformError(404, "The specified resource does not exist.")
    fields = _line_item_fields(body, course, partial=False)
    with transaction.atomic():
        item = LineItem.objects.create(course=course, tool=tool, **fields)
        link = fields.get("resource_link")
        # Canvas: the first line item created for a resource link becomes its gradebook column.
        if link is not None and link.line_item_id is None:
            link.line_item = item
            link.save(update_fields=["line_item"])
    return line_item_json(platform, item, tool)


def _service_line_item(tool: Tool, course_pk: int, pk: int, query: Any) -> LineItem:
    course = _service_course(course_pk, tool, query.get("type_id"))
    item = LineItem.objects.select_related("course", "resource_link").filter(course=course, pk=pk).first()
    if item is None:
        raise PlatformError(404, "No such line item.")
    return item


def get_line_item(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any) -> dict[str, Any]:
    return line_item_json(platform, _service_line_item(tool, course_pk, pk, query), tool)


def update_line_item(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any, body: Any) -> dict[str, Any]:
    item = _service_line_item(tool, course_pk, pk, query)
    fields = _line_item_fields(body, item.course, partial=True)
    fields.pop("resource_link", None)  # a line item's link cannot be changed
    for attr, value in fields.items():
        setattr(item, attr, value)
    item.save()
    return line_item_json(platform, item, tool)


def list_results(platform: Platform, tool: Tool, course_pk: int, pk: int, query: Any) -> list[dict[str, Any]]:
    item = _service_line_item(tool, course_pk, pk, query)
    scores = item.scores.select_related("person").order_by("person__pk")
    if query.get("user_id"):
        scores = scores.filter(person__sub=query["user_id"][:64])
    base = platform.lineitem_url(item, tool)
    # Canvas answers the result: the score as the tool sent it, or the teacher's after a hand edit.
    canvas = course_style(item.course, tool) == Style.CANVAS
    return [
        {
            "id": f"{base}#result-{s.person.sub}",
            "scoreOf": base,
            "userId": s.person.sub,
            "resultScore": s.result_score if canvas else s.score_given,
            "resultMaximum": s.score_maximum,
            "comment": s.comment,
        }
        for s in scores
    ]


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise PlatformError(400, "timestamp must be an ISO-8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PlatformError(400, "timestamp is not ISO-8601.")
    if not 1970 <= parsed.year <= 9000:
        raise PlatformError(400, "timestamp is out of range.")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def post_score(tool: Tool, course_pk: int, pk: int, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
    """Receive a score (AGS), with Canvas or Moodle semantics; every received score is kept in the history.

    Returns (status, JSON answer); refusals are recorded, then answered (raised again only where they are answered
    in the status line, as Moodle does), once the line item is known.
    """
    item = _service_line_item(tool, course_pk, pk, query)
    style = course_style(item.course, tool)
    user_id = str(body.get("userId", ""))[:255] if isinstance(body, dict) else ""
    person = Person.objects.filter(sub=user_id).first() if user_id else None
    refusal = None
    try:
        with transaction.atomic():
            status, answer = _apply_score(item, style, person, body)
    except PlatformError as exc:
        refusal = exc
        status, answer = exc.status, {"error": exc.message}
    ScoreEvent.objects.create(
        line_item=item,
        person=person,
        user_id=user_id,
        payload=body if isinstance(body, dict) else {"_raw": str(body)[:1000]},
        status_code=status,
        detail=str(answer.get("error", "accepted"))[:255],
    )
    if refusal is not None and refusal.in_status_line:
        raise refusal
    return status, answer


def _apply_score(item: LineItem, style: str, person: Person | None, body: Any) -> tuple[int, dict[str, Any]]:
    moodle = style == Style.MOODLE
    if not isinstance(body, dict):
        raise PlatformError(400, "The body must be a JSON object.")
    for required in ("userId", "activityProgress", "gradingProgress", "timestamp"):
        if required not in body:
            raise PlatformError(400, f"{required} is required.")
    if body["activityProgress"] not in ACTIVITY_PROGRESS:
        raise PlatformError(400, "activityProgress is not a valid value.")
    if body["gradingProgress"] not in GRADING_PROGRESS:
        raise PlatformError(400, "gradingProgress is not a valid value.")
    timestamp = _parse_timestamp(body["timestamp"])
    given = body.get("scoreGiven")
    maximum = body.get("scoreMaximum")
    if given is not None:
        if not isinstance(given, int | float) or isinstance(given, bool) or given < 0:
            raise PlatformError(400, "scoreGiven must be a number >= 0.")
        if maximum is None and not moodle:
            raise PlatformError(422, "ScoreMaximum must be present when ScoreGiven is present.")
    if maximum is not None and (not isinstance(maximum, int | float) or isinstance(maximum, bool) or maximum <= 0):
        raise PlatformError(400 if moodle else 422, "scoreMaximum must be a number > 0.")
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 10_000:
        raise PlatformError(400, "comment must be a string of at most 10000 characters.")
    enrollment = Enrollment.objects.active().filter(course=item.course, person=person).first() if person else None
    if enrollment is None or enrollment.is_instructor:
        if moodle:  # exactly what Moodle 4.5 answers: the score echoed after the message, in the status line
            raise PlatformError(400, "Incorrect score received" + json.dumps(body)[:500], in_status_line=True)
        raise PlatformError(422, "User not found in course or is not a student")
    extension = {} if moodle else _canvas_extension(body)
    submitted_at = _submitted_at(extension)
    current = Score.objects.select_for_update().filter(line_item=item, person=person).first()
    if current is not None:
        if moodle and int(timestamp.timestamp()) <= int(current.timestamp.timestamp()):
            raise PlatformError(
                409,
                f"Refusing score with an earlier timestamp for item {item.pk} and user {person.sub}",
                in_status_line=True,
            )
        if not moodle and timestamp < current.timestamp:
            raise PlatformError(400, "Score timestamp can't be before last updated timestamp")
    grading = body["gradingProgress"]
    fields: dict[str, Any] = {
        "score_maximum": item.score_maximum,
        "activity_progress": body["activityProgress"],
        "grading_progress": grading,
        "comment": comment,
        "timestamp": timestamp,
    }
    if moodle:
        applies = grading == "FullyGraded" and given is not None
        scale = float(maximum if maximum is not None else 1.0)
        fields.update(score_given=float(given) / scale * item.score_maximum if applies else None, grader="tool")
    else:
        fields.update(_canvas_grade(item, current, given, maximum, grading, extension))
        fields["result_score"] = float(given) if given is not None else None
        if _canvas_new_submission(extension):
            # Canvas: submit_homework(submitted_at) at every score that does not say new_submission: false.
            fields["attempt"] = (current.attempt if current else 0) + 1
            fields["submitted_at"] = submitted_at or timezone.now()
    score, _ = Score.objects.update_or_create(line_item=item, person=person, defaults=fields)
    return 200, {"resultUrl": f"result-{person.sub}", "scoreGiven": score.score_given}


CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"
# Canvas refuses a submitted_at more than this far ahead of its clock (scores_controller#verify_valid_submitted_at).
SUBMITTED_AT_FUTURE_BUFFER = timedelta(minutes=1)


def _canvas_extension(body: dict[str, Any]) -> dict[str, Any]:
    extension = body.get(CANVAS_SUBMISSION)
    if extension is None:
        return {}
    if not isinstance(extension, dict):
        raise PlatformError(400, f"{CANVAS_SUBMISSION} must be an object.")
    return extension


def _flag(value: Any) -> bool | None:
    """A boolean as Canvas casts it (ActiveRecord::Type::Boolean): None when absent."""
    if value is None or value == "":
        return None
    return str(value).strip().lower() not in {"false", "0", "f", "off", "no"}


def _canvas_new_submission(extension: dict[str, Any]) -> bool:
    """Canvas: every score counts as a new submission unless new_submission is false or submission_type is none."""
    flag = _flag(extension.get("new_submission"))
    return (flag is None or flag) and extension.get("submission_type") != "none"


def _submitted_at(extension: dict[str, Any]) -> datetime | None:
    value = extension.get("submitted_at")
    if value in (None, ""):
        return None
    try:
        submitted_at = _parse_timestamp(value)
    except PlatformError:
        raise PlatformError(400, f"Provided submitted_at timestamp of {str(value)[:64]} not a valid timestamp")
    if submitted_at > timezone.now() + SUBMITTED_AT_FUTURE_BUFFER:
        raise PlatformError(400, f"Provided submitted_at timestamp of {value} in the future")
    return submitted_at


def _canvas_grade(
    item: LineItem, current: Score | None, given: Any, maximum: Any, grading: str, extension: dict[str, Any]
) -> dict[str, Any]:
    """The gradebook cell after a score, as Canvas's scores_controller#score_submission decides it."""
    kept = {
        "score_given": current.score_given if current else None,
        "grade": current.grade if current else "",
        "grader": current.grader if current else "",
    }
    reset = grading not in {"FullyGraded", "PendingManual"} or given is None
    if _flag(extension.get("preserve_score")) or reset:
        return kept if _flag(extension.get("preserve_score")) else {"score_given": None, "grade": "", "grader": ""}
    if _flag(extension.get("prioritize_non_tool_grade")) and kept["score_given"] is not None:
        return kept  # any grade already there wins (a teacher's, or an earlier one)
    if item.grading_type == "pass_fail":
        passed = float(given) > 0
        return {
            "score_given": item.score_maximum if passed else 0.0,
            "grade": "complete" if passed else "incomplete",
            "grader": "tool",
        }
    scale = float(maximum) if maximum else 1.0
    return {"score_given": float(given) / scale * item.score_maximum, "grade": "", "grader": "tool"}


def grade_by_hand(item: LineItem, person: Person, score: float | None) -> Score:
    """A teacher types a grade into the gradebook (Canvas: SpeedGrader), or clears it with None.

    As in Canvas (`submission.rb`: `results.update_all(result_score: score)`), the tool's result takes the teacher's
    score but keeps its updated_at, so a later tool score with a newer timestamp is accepted and replaces the grade
    unless it asks for `prioritize_non_tool_grade`.
    """
    if score is not None and not (isinstance(score, int | float) and 0 <= score <= 1e6):
        raise PlatformError(400, "The grade must be a number between 0 and 1000000, or empty to clear it.")
    if not Enrollment.objects.active().filter(course=item.course_id, person=person, is_instructor=False).exists():
        raise PlatformError(400, "Only a student of the course can be graded.")
    grade = "" if score is None or item.grading_type != "pass_fail" else ("complete" if score > 0 else "incomplete")
    with transaction.atomic():
        cell = Score.objects.select_for_update().filter(line_item=item, person=person).first()
        if cell is None:
            # Graded before the tool sent anything: no result yet, so nothing for a tool timestamp to be older than.
            cell = Score(line_item=item, person=person, timestamp=datetime(1970, 1, 1, tzinfo=UTC))
        cell.score_given = None if score is None else float(score)
        cell.score_maximum = item.score_maximum
        cell.result_score = cell.score_given
        cell.grade = grade
        cell.grader = "teacher"
        cell.save()
    return cell
