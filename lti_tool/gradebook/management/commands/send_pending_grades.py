"""`manage.py send_pending_grades`: deliver waiting scores to the LMS now, in this process, and print counts."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from lti_tool.gradebook import services


class Command(BaseCommand):
    help = "Deliver the gradebook scores that are due (or, with --all, every waiting score) now and print counts."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="also send waiting scores whose next retry is not due yet"
        )

    def handle(self, *args, **options) -> None:
        attempted = services.deliver_due_now(include_not_due=options["all"])
        tried = ", ".join(f"{k}: {v}" for k, v in sorted(attempted.items())) or "nothing was due"
        self.stdout.write(f"This run: {tried}")
        totals = services.outbox_counts()
        self.stdout.write("Outbox: " + ", ".join(f"{k}: {v}" for k, v in totals.items()))
