"""Publish a new signing key; it signs once platforms have had a day to fetch it (or at once with --activate-now)."""

from django.core.management.base import BaseCommand

from lti_tool.keys import ROTATION_GRACE, rotate_key


class Command(BaseCommand):
    help = "Publish a new tool key in the JWKS; it becomes the signing key after the grace period."

    def add_arguments(self, parser):
        parser.add_argument(
            "--activate-now",
            action="store_true",
            help="Sign with the new key at once (after a key leak; platforms caching the JWKS may fail briefly).",
        )

    def handle(self, *args, activate_now=False, **options):
        key = rotate_key(activate_now=activate_now)
        when = "now" if activate_now else f"after {ROTATION_GRACE}"
        self.stdout.write(f"published key {key.kid}; signs {when}")
