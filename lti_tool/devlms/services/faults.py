"""Fault injection: make the development LMS fail, stall or refuse on purpose (for reliability tests)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from lti_tool.devlms.models import Fault
from lti_tool.devlms.services.base import PlatformError


def set_fault(mode: str, count: int | None = None, seconds: float | None = None) -> Fault:
    """Make the service endpoints misbehave: for the next `count` requests, or until cleared when None."""
    if mode not in Fault.Mode.values:
        raise PlatformError(400, f"mode must be one of {Fault.Mode.values}")
    if count is not None and not 0 < count <= 1_000_000:
        raise PlatformError(400, "count must be between 1 and 1000000.")
    if seconds is not None and not 0 <= seconds <= 600:
        raise PlatformError(400, "seconds must be between 0 and 600.")
    Fault.objects.filter(pk=1).delete()
    return Fault.objects.create(pk=1, mode=mode, remaining=count, seconds=1.0 if seconds is None else seconds)


def clear_faults() -> None:
    """Back to normal service."""
    Fault.objects.all().delete()


def take_fault() -> tuple[str, float] | None:
    """The fault that applies to this request, if any (uses one of the remaining count)."""
    with transaction.atomic():
        fault = Fault.objects.select_for_update().filter(pk=1).first()
        if fault is None:
            return None
        if fault.remaining is not None:
            if fault.remaining <= 0:
                fault.delete()
                return None
            Fault.objects.filter(pk=1).update(remaining=F("remaining") - 1, hits=F("hits") + 1)
        else:
            Fault.objects.filter(pk=1).update(hits=F("hits") + 1)
        return fault.mode, fault.seconds
