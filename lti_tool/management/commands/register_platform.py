"""Manual registration of a platform (what Dynamic Registration does automatically)."""

from django.core.management.base import BaseCommand, CommandError

from lti_tool import services


class Command(BaseCommand):
    help = "Register (or update) an LTI 1.3 platform: issuer + client_id, its endpoints and deployment ids."

    def add_arguments(self, parser):
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--auth-login-url", required=True, help="the platform's OIDC authorization endpoint")
        parser.add_argument("--auth-token-url", required=True, help="the platform's OAuth2 token endpoint")
        parser.add_argument("--key-set-url", required=True, help="the platform's JWKS URL")
        parser.add_argument("--deployment-id", action="append", default=[], help="repeatable")
        parser.add_argument("--name", default="")
        parser.add_argument("--auth-audience", default="", help="token audience when it is not the token URL")
        parser.add_argument("--pending", action="store_true", help="register as pending (not yet launchable)")

    def handle(self, *args, **o):
        try:
            registration = services.register_platform(
                issuer=o["issuer"],
                client_id=o["client_id"],
                auth_login_url=o["auth_login_url"],
                auth_token_url=o["auth_token_url"],
                key_set_url=o["key_set_url"],
                deployment_ids=o["deployment_id"],
                name=o["name"],
                auth_audience=o["auth_audience"],
                status="pending" if o["pending"] else "active",
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        deployments = ", ".join(registration.deployments.values_list("deployment_id", flat=True)) or "none yet"
        self.stdout.write(
            f"registration {registration.pk}: {registration.issuer} client_id={registration.client_id} "
            f"status={registration.status} deployments: {deployments}"
        )
