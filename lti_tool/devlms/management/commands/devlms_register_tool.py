"""`manage.py devlms_register_tool --tool-url http://localhost:8000`: register the tool with the development LMS by
real LTI Dynamic Registration over HTTP, then install it (as an LMS admin would), so launches work at once.

Both servers must be running (in `make demo` they are the same runserver). Does nothing when a tool at that URL is
already installed, unless --force.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lti_tool import outbound
from lti_tool.devlms import services
from lti_tool.devlms.models import Style, Tool


class Command(BaseCommand):
    help = "Register the tool with the development LMS by Dynamic Registration over HTTP, and install it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tool-url", default="http://localhost:8000", help="the tool's base URL")
        parser.add_argument("--platform-url", default="", help="the development LMS's base URL (default: the tool URL)")
        parser.add_argument("--style", choices=Style.values, default=Style.CANVAS, help="mimic Canvas or Moodle")
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server to answer")
        parser.add_argument("--force", action="store_true", help="register again even if already installed")

    def handle(self, *args: Any, **options: Any) -> None:
        tool_url = options["tool_url"].rstrip("/")
        platform = services.Platform((options["platform_url"] or tool_url).rstrip("/"))
        services.ensure_seed()
        existing = services.current_tool()
        if existing and existing.initiate_login_uri.startswith(tool_url + "/") and not options["force"]:
            self.stdout.write(f"Already registered and installed: client_id {existing.client_id}")
            return
        self._wait_until_up(platform.url("jwks"), options["wait"])
        token = services.start_registration(options["style"])
        config_url = platform.url("openid_configuration", {"canvas": 1} if options["style"] == Style.CANVAS else None)
        before = Tool.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        try:
            response = outbound.request(
                "GET",
                tool_url + "/lti/register/",
                public_only=False,
                params={"openid_configuration": config_url, "registration_token": token.token},
                timeout=60,
            )
        except requests.RequestException as exc:
            raise CommandError(f"Could not reach the tool's /lti/register/: {exc}") from exc
        tool = Tool.objects.filter(pk__gt=before).order_by("-pk").first()
        if tool is None:
            raise CommandError(
                f"The tool did not complete Dynamic Registration (HTTP {response.status_code}):\n{response.text[:1500]}"
            )
        services.install_tool(tool)
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered by Dynamic Registration ({options['style']}): client_id {tool.client_id}, "
                f"deployment_id {tool.deployment_id}, issuer {platform.issuer}"
            )
        )

    def _wait_until_up(self, url: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if outbound.request("GET", url, timeout=5, public_only=False).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"The server at {url} did not answer within {seconds:.0f} s")
            time.sleep(0.5)
