"""`manage.py load_challenge_sets`: validate the content files and store new versions of changed sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quizzes.content import CONTENT_ROOT, ContentError, load_challenge_sets


class Command(BaseCommand):
    help = "Validate quizzes/content/*/set.yaml and modes.yaml; store a new version of every set that changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--root", default=str(CONTENT_ROOT), help="content directory (default: %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = load_challenge_sets(Path(options["root"]))
        except ContentError as exc:
            raise CommandError(str(exc)) from exc
        for challenge_set, created in results:
            state = "new version" if created else "unchanged"
            count = len(challenge_set.challenges)
            self.stdout.write(f"{challenge_set.slug}: {state} {challenge_set.version} ({count} challenges)")
