"""Course rosters over NRPS: on demand, and in the background after an instructor's launch (at most hourly)."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

from lti_tool.gradebook import ags
from lti_tool.models import Context

logger = logging.getLogger(__name__)


def sync_roster(context: Context) -> int:
    """Fetch the course roster over NRPS and store it as Membership rows (from_roster=True for new ones); returns
    the number of active members seen. Raises ags.ServiceError when the LMS cannot be asked."""
    from lti_tool.gradebook import nrps

    return nrps.sync_roster(context)


# An instructor's launch refreshes the course roster in the background at most this often per context, so their
# pages list the students who have not started without anyone pressing "Sync roster".
ROSTER_SYNC_INTERVAL_S = 3600


def _roster_sync_key(context_pk: int) -> str:
    return f"lti:roster-sync:{context_pk}"


def request_roster_sync(context: Context) -> bool:
    """Queue a background roster sync for this context unless one ran (or was queued) within the interval; returns
    whether one was queued. Contexts without a membership service are skipped."""
    if not context.memberships_url:
        return False
    if not cache.add(_roster_sync_key(context.pk), "queued", ROSTER_SYNC_INTERVAL_S):
        return False
    transaction.on_commit(lambda pk=context.pk: _enqueue_roster_sync(pk))
    return True


def _enqueue_roster_sync(context_pk: int) -> None:
    from lti_tool.gradebook.tasks import sync_roster as sync_roster_task

    try:
        sync_roster_task.delay(context_pk)
    except Exception:  # noqa: BLE001 - a roster refresh is a convenience; never fail a launch over the broker
        logger.warning("could not enqueue a roster sync", extra={"context": context_pk}, exc_info=True)
        cache.delete(_roster_sync_key(context_pk))


def sync_roster_in_background(context_pk: int) -> int | None:
    """The background sync (a Celery task): the number of members, or None when the LMS could not be asked (then
    the next instructor launch tries again)."""
    context = Context.objects.select_related("deployment__registration").filter(pk=context_pk).first()
    if context is None:
        return None
    try:
        return sync_roster(context)
    except ags.ServiceError as exc:
        logger.warning("roster sync failed", extra={"context": context_pk, "detail": exc.detail})
        cache.delete(_roster_sync_key(context_pk))
        return None
