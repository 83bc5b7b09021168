"""`python manage.py grade_file SLUG FILE [--json]`: grade a file through the real sandbox, as a submission."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from grading.models import CodeSubmission


class Command(BaseCommand):
    help = "Grade a file as a submission to a code challenge (real sandbox, real hidden checks)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="code challenge slug, e.g. resnet-block-stride")
        parser.add_argument("file", help="the Python file to grade")
        parser.add_argument(
            "--set-version", dest="set_version", default=None, help="challenge-set version (default: the current one)"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")

    def handle(self, *args, slug: str, file: str, set_version: str | None, json: bool, **options):
        from grading.challenges import ChallengeNotFound, get_challenge
        from grading.pool import reset_pool
        from grading.services import check_code, grade_submission_now

        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        raw = path.read_bytes()
        if len(raw) > settings.GRADING_CODE_LIMIT_BYTES:
            raise CommandError(f"the file is larger than {settings.GRADING_CODE_LIMIT_BYTES} bytes")
        try:
            spec = get_challenge(slug, set_version)
        except ChallengeNotFound as exc:
            raise CommandError(str(exc)) from exc
        try:
            code = check_code(raw.decode("utf-8", errors="replace"))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        # Stored like any submission (no student), then graded here, synchronously, through the same path.
        submission = CodeSubmission.objects.create(challenge_slug=spec.slug, challenge_version=spec.version, code=code)
        try:
            result = grade_submission_now(submission.pk, worker="grade_file")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        finally:
            reset_pool()
        result = result or CodeSubmission.objects.get(pk=submission.pk)
        payload = {
            "submission": str(result.pk),
            "challenge": result.challenge_slug,
            "version": result.challenge_version,
            "status": result.status,
            "score": result.score,
            "max_score": result.max_score,
            "passed": result.status == CodeSubmission.Status.GRADED and all(c["passed"] for c in result.checks),
            "checks": [
                {"name": c["name"], "passed": c["passed"], "points": c["points"], "max_points": c["max_points"],
                 "feedback": c["feedback"]}
                for c in result.checks
            ],
            "feedback": result.feedback,
            "device": result.device,
        }
        self._print_human(payload)
        if json:
            self.stdout.write(_json(payload))
        if result.status == CodeSubmission.Status.ERROR:
            raise CommandError(result.feedback)

    def _print_human(self, p: dict) -> None:
        self.stdout.write(f"{p['challenge']}: {p['status']}  score {p['score']} / {p['max_score']}  ({p['device']})")
        for c in p["checks"]:
            mark = "PASS" if c["passed"] else "FAIL"
            self.stdout.write(f"  [{mark}] {c['name']} ({c['points']:g}/{c['max_points']:g})")
            if c["feedback"] and not c["passed"]:
                self.stdout.write(f"         {c['feedback']}")
        if p["feedback"]:
            self.stdout.write(p["feedback"])


def _json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))
