"""Factories and helpers for the challenge-set tests (LTI factories live in tests/factories.py)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

import factory

from lti_tool.models import LtiUser, ResourceLink
from lti_tool.sessions import SESSION_KEY, LaunchInfo
from quizzes import content, services
from quizzes.models import Placement
from tests.factories import LtiUserFactory, MembershipFactory, ResourceLinkFactory

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


class PlacementFactory(factory.django.DjangoModelFactory):
    """A placement of the current ResNet set; pass mode="exam" (etc.) or challenge_slugs=[...] to configure it."""

    class Meta:
        model = Placement

    resource_link = factory.SubFactory(ResourceLinkFactory)

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Placement:
        mode = kwargs.pop("mode", "timed")
        slugs = kwargs.pop("slugs", None)
        challenge_set = content.current_set()
        config = services.build_placement_config(
            challenge_slugs=slugs or [c["slug"] for c in challenge_set.challenges],
            mode_slug=mode,
            challenge_set=challenge_set,
        )
        config.update({k: v for k, v in kwargs.items() if k in config})
        rest = {k: v for k, v in kwargs.items() if k not in config}
        return model_class.objects.create(**config, **rest)


def student_for(resource_link: ResourceLink, **kwargs: Any) -> LtiUser:
    """A learner of the resource link's course, on the same platform registration."""
    user = LtiUserFactory(registration=resource_link.context.deployment.registration, **kwargs)
    MembershipFactory(context=resource_link.context, lti_user=user)
    return user


def instructor_for(resource_link: ResourceLink, **kwargs: Any) -> LtiUser:
    user = LtiUserFactory(registration=resource_link.context.deployment.registration, **kwargs)
    MembershipFactory(context=resource_link.context, lti_user=user, roles=[INSTRUCTOR], is_learner=False, is_staff=True)
    return user


def launch_info(
    resource_link: ResourceLink, user: LtiUser, *, staff: bool = False, custom: dict | None = None
) -> LaunchInfo:
    return LaunchInfo(
        launch_id=str(uuid.uuid4()),
        message_type="LtiResourceLinkRequest",
        registration_pk=user.registration_id,
        deployment_pk=resource_link.context.deployment_id,
        lti_user_pk=user.pk,
        context_pk=resource_link.context_id,
        resource_link_pk=resource_link.pk,
        roles=[INSTRUCTOR if staff else LEARNER],
        is_staff=staff,
        is_learner=not staff,
        custom=custom or {},
    )


def establish_launch(client: Any, resource_link: ResourceLink, user: LtiUser, *, staff: bool = False) -> LaunchInfo:
    """Put a validated launch of this link into the test client's session (what the LTI launch view does)."""
    info = launch_info(resource_link, user, staff=staff)
    session = client.session
    launches = dict(session.get(SESSION_KEY, {}))
    launches[str(resource_link.pk)] = asdict(info)
    session[SESSION_KEY] = launches
    session.save()
    return info


def option_id(attempt: Any, slug: str, key: str) -> str:
    """What a browser submits for the option with content key `key` in this attempt (its opaque per-attempt id)."""
    state = attempt.states.get(slug=slug)
    return next(shown_id for shown_key, shown_id in state.presentation["options"] if shown_key == key)


def shown_letter(attempt: Any, slug: str, key: str) -> str:
    """The letter this attempt shows the option with content key `key` under."""
    keys = [shown_key for shown_key, _id in attempt.states.get(slug=slug).presentation["options"]]
    return "ABCDEFGH"[keys.index(key)]
