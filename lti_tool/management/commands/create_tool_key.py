"""Make sure the tool has a signing key (created on first use anyway) and print its kid."""

from django.core.management.base import BaseCommand

from lti_tool.keys import signing_key


class Command(BaseCommand):
    help = "Create the tool's RSA signing key if there is none; print the active key id."

    def handle(self, *args, **options):
        key = signing_key()
        self.stdout.write(f"active key: {key.kid}")
