"""`python manage.py show_queues [--json]`: what is waiting, from the broker and from the database.

The broker's queue depths (`default`, `gpu`) say what the workers have not picked up yet; the database says what is
really outstanding (the database is the truth: a broker that lost messages shows short queues while submissions
stay queued, and the sweepers re-enqueue them). Exits 1 when the broker cannot be reached (after printing the rest).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone

from config import health
from grading.models import CodeSubmission
from lti_tool.gradebook.models import ScoreUpdate


def _age_s(since: datetime | None) -> float | None:
    return round((timezone.now() - since).total_seconds(), 1) if since else None


def queue_status() -> dict[str, Any]:
    """Broker queue depths plus outstanding code submissions and gradebook scores, as one JSON-ready dict."""
    try:
        broker: dict[str, Any] = {"reachable": True, "queues": health.queue_depths()}
    except Exception as exc:  # report, never crash: the database half is still worth seeing
        broker = {"reachable": False, "error": health._redact(f"{type(exc).__name__}: {exc}"), "queues": {}}

    outstanding = CodeSubmission.objects.filter(
        status__in=[CodeSubmission.Status.QUEUED, CodeSubmission.Status.RUNNING]
    )
    by_status = {row["status"]: row["n"] for row in outstanding.values("status").annotate(n=Count("id"))}
    oldest_queued = CodeSubmission.objects.filter(status=CodeSubmission.Status.QUEUED).aggregate(t=Min("queued_at"))
    waiting = ScoreUpdate.objects.filter(state=ScoreUpdate.State.WAITING)
    waiting_agg = waiting.aggregate(n=Count("id"), oldest=Min("created_at"))
    return {
        "broker": broker,
        "submissions": {
            "queued": by_status.get(CodeSubmission.Status.QUEUED, 0),
            "running": by_status.get(CodeSubmission.Status.RUNNING, 0),
            "oldest_queued_age_s": _age_s(oldest_queued["t"]),
        },
        "gradebook": {
            "waiting": waiting_agg["n"],
            "oldest_waiting_age_s": _age_s(waiting_agg["oldest"]),
            "refused": ScoreUpdate.objects.filter(state=ScoreUpdate.State.REFUSED).count(),
        },
    }


class Command(BaseCommand):
    help = "Show Celery queue depths (default, gpu) and outstanding submissions and gradebook scores."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        status = queue_status()
        if options["json"]:
            self.stdout.write(json.dumps(status))
        else:
            broker = status["broker"]
            if broker["reachable"]:
                for queue, depth in broker["queues"].items():
                    self.stdout.write(f"broker queue {queue:<8} {depth:>6} message(s) waiting")
            else:
                self.stdout.write(f"broker unreachable: {broker['error']}")
            subs = status["submissions"]
            age = f" (oldest queued {subs['oldest_queued_age_s']} s ago)" if subs["oldest_queued_age_s"] else ""
            self.stdout.write(f"code submissions: {subs['queued']} queued, {subs['running']} running{age}")
            book = status["gradebook"]
            age = f" (oldest {book['oldest_waiting_age_s']} s ago)" if book["oldest_waiting_age_s"] else ""
            self.stdout.write(
                f"gradebook scores: {book['waiting']} waiting for delivery{age}, {book['refused']} refused by the LMS"
            )
        if not status["broker"]["reachable"]:
            raise CommandError("the broker cannot be reached (CELERY_BROKER_URL)")
