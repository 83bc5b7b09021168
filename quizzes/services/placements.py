"""Placement configuration: what a deep-linking form or the settings choose, the placement behind a resource link, and
changes while nobody has started."""

from __future__ import annotations

import logging
import uuid as uuid_module
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from quizzes import audit, content
from quizzes.models import ChallengeSet, Placement, PlacementDraft
from quizzes.services.errors import InvalidInput, Refused, _plain_text

logger = logging.getLogger(__name__)

MAX_PLACEMENT_POINTS = 10_000.0
MAX_SET_TIME_LIMIT_S = 24 * 3600
UNGRADABLE_LINK_MESSAGE = (
    "The LMS keeps no gradebook column for this link (in Canvas: it was opened from the course navigation menu or "
    "another place that is not an assignment), so it can only run ungraded. To grade it, add the tool as an "
    "assignment (Canvas: Assignments, + Assignment, Submission Type External Tool)."
)


def default_placement_config(challenge_set: ChallengeSet | None = None) -> dict[str, Any]:
    """The configuration of a link nobody configured: the whole current set in the default (timed) mode."""
    challenge_set = challenge_set or content.current_set()
    rules = content.get_mode()
    return {
        "challenge_set": challenge_set,
        "title": challenge_set.title,
        "challenge_slugs": [c["slug"] for c in challenge_set.challenges],
        "mode_slug": rules["slug"],
        "rules": rules,
        "points": float(sum(c["points"] for c in challenge_set.challenges)),
        "credit_policy": dict(rules["credit_policy"]),
    }


def build_placement_config(
    *,
    challenge_slugs: list[str],
    mode_slug: str,
    points: float | None = None,
    title: str = "",
    set_time_limit_s: int | None = None,
    shuffle_options: bool | None = None,
    challenge_set: ChallengeSet | None = None,
) -> dict[str, Any]:
    """Validate an instructor's choices (deep-linking form or settings) into a placement configuration.

    `shuffle_options` None keeps the mode's rule; True or False overrides it for this placement."""
    challenge_set = challenge_set or content.current_set()
    known = [c["slug"] for c in challenge_set.challenges]
    if not challenge_slugs:
        raise InvalidInput("Choose at least one challenge.")
    unknown = [slug for slug in challenge_slugs if slug not in known]
    if unknown:
        raise InvalidInput(f"Unknown challenges: {', '.join(unknown[:5])}.")
    if len(set(challenge_slugs)) != len(challenge_slugs):
        raise InvalidInput("A challenge was chosen twice.")
    modes = content.get_modes()
    if mode_slug not in modes:
        raise InvalidInput(f"Unknown mode {mode_slug[:50]!r}; choose one of {', '.join(modes)}.")
    rules = dict(modes[mode_slug])
    if set_time_limit_s is not None:
        if rules["timer"] != "whole_set":
            raise InvalidInput("A time limit for the whole set only applies to modes with one timer for the set.")
        if not 60 <= set_time_limit_s <= MAX_SET_TIME_LIMIT_S:
            raise InvalidInput("The time limit must be between 1 minute and 24 hours.")
        rules["set_time_limit_s"] = int(set_time_limit_s)
    rules["shuffle_options"] = bool(rules.get("shuffle_options")) if shuffle_options is None else bool(shuffle_options)
    ordered = [slug for slug in known if slug in challenge_slugs]  # keep the set's order
    total = float(sum(challenge_set.challenge(slug)["points"] for slug in ordered))
    if points is None:
        points = total
    if not 0 < points <= MAX_PLACEMENT_POINTS:
        raise InvalidInput(f"Points must be more than 0 and at most {MAX_PLACEMENT_POINTS:g}.")
    title = _plain_text(title, limit=200, what="title")
    return {
        "challenge_set": challenge_set,
        "title": title or challenge_set.title[:200],
        "challenge_slugs": ordered,
        "mode_slug": mode_slug,
        "rules": rules,
        "points": float(points),
        "credit_policy": dict(rules["credit_policy"]),
    }


def create_placement_draft(*, registration: Any, context: Any, created_by: Any, **choices: Any) -> PlacementDraft:
    """Store a deep-linking configuration; its uuid travels to the LMS as the custom parameter `placement`."""
    config = build_placement_config(**choices)
    with transaction.atomic():
        return PlacementDraft.objects.create(
            registration=registration, context=context, created_by=created_by, **config
        )


def resolve_placement(resource_link: Any, launch: Any) -> Placement:
    """The placement behind a resource link, created on its first launch.

    A link carrying custom {"placement": <uuid of a draft made by this platform's deep linking>} gets that
    configuration; any other link gets the whole current ResNet set in the default (timed) mode.
    """
    existing = Placement.objects.select_related("challenge_set").filter(resource_link=resource_link).first()
    if existing is not None:
        return _as_practice_if_ungradable(existing, resource_link)
    from lti_tool.models import ResourceLink

    with transaction.atomic():
        link = ResourceLink.objects.select_for_update().select_related("context__deployment").get(pk=resource_link.pk)
        existing = Placement.objects.filter(resource_link=link).first()
        if existing is not None:
            return existing
        custom = {**(link.custom or {}), **(getattr(launch, "custom", None) or {})}
        draft = _find_draft(custom.get("placement"), link.context.deployment.registration_id)
        if draft is not None:
            config = {
                "challenge_set": draft.challenge_set,
                "title": draft.title,
                "challenge_slugs": list(draft.challenge_slugs),
                "mode_slug": draft.mode_slug,
                "rules": dict(draft.rules),
                "points": draft.points,
                "credit_policy": dict(draft.credit_policy),
            }
        else:
            config = default_placement_config()
            config["title"] = link.title or config["title"]
        if not link.can_be_graded:
            config.update(_ungraded_rules())
        return Placement.objects.create(resource_link=link, draft=draft, **config)


def _ungraded_rules() -> dict[str, Any]:
    """The rules of the first ungraded mode in modes.yaml (practice): a link whose grades cannot reach the LMS
    never lets a student spend timed, limited attempts for a grade that goes nowhere."""
    rules = next((dict(m) for m in content.get_modes().values() if not m.get("graded")), None)
    rules = rules or {**content.get_mode(), "graded": False}  # a modes.yaml without an ungraded mode
    return {"mode_slug": rules["slug"], "rules": rules, "credit_policy": dict(rules["credit_policy"])}


def _as_practice_if_ungradable(placement: Placement, link: Any) -> Placement:
    """A graded placement made before its link was known to be ungradable becomes practice while nobody started."""
    if not placement.is_graded or link.can_be_graded or placement.attempts.exists():
        return placement
    with transaction.atomic():
        placement = Placement.objects.select_for_update().select_related("challenge_set").get(pk=placement.pk)
        if placement.is_graded and not placement.attempts.exists():
            for field, value in _ungraded_rules().items():
                setattr(placement, field, value)
            placement.save()
    return placement


def _find_draft(value: Any, registration_id: int) -> PlacementDraft | None:
    if not value:
        return None
    try:
        draft_uuid = uuid_module.UUID(str(value))
    except ValueError:
        logger.warning("ignored a malformed placement custom parameter")
        return None
    draft = PlacementDraft.objects.filter(uuid=draft_uuid, registration_id=registration_id).first()
    if draft is None:
        logger.warning("placement draft not found for this platform", extra={"placement": str(draft_uuid)})
    return draft


def _settings_snapshot(placement: Placement) -> dict[str, Any]:
    return {
        "title": placement.title,
        "mode": placement.mode_slug,
        "challenges": list(placement.challenge_slugs),
        "points": placement.points,
        "set_time_limit_s": placement.rules.get("set_time_limit_s"),
        "shuffle_options": bool(placement.rules.get("shuffle_options")),
    }


def update_placement(
    placement: Placement, *, actor: Any = None, now: datetime | None = None, **choices: Any
) -> Placement:
    """Change a placement's challenges, mode or points; refused once anyone has started an attempt. Audited."""
    with transaction.atomic():
        placement = Placement.objects.select_for_update().get(pk=placement.pk)
        if placement.attempts.exists():
            raise Refused("Students have already started this activity; its settings can no longer change.")
        choices.setdefault("challenge_set", content.current_set(placement.challenge_set.slug))
        config = build_placement_config(**choices)
        if config["rules"].get("graded") and not placement.resource_link.can_be_graded:
            raise InvalidInput(UNGRADABLE_LINK_MESSAGE)
        before = _settings_snapshot(placement)
        for field, value in config.items():
            setattr(placement, field, value)
        placement.save()
        audit.record(
            placement, audit.Action.SETTINGS, actor=actor, now=now or timezone.now(),
            before=before, after=_settings_snapshot(placement),
        )
        return placement
