"""List registered platforms with their status and deployments."""

from django.core.management.base import BaseCommand

from lti_tool.models import Registration


class Command(BaseCommand):
    help = "List LTI platform registrations."

    def handle(self, *args, **options):
        registrations = Registration.objects.prefetch_related("deployments").order_by("issuer", "client_id")
        if not registrations:
            self.stdout.write("no platforms registered")
        for r in registrations:
            deployments = ", ".join(
                d.deployment_id + ("" if d.is_active else " (pending)" if d.pending else " (disabled)")
                for d in r.deployments.all()
            )
            self.stdout.write(
                f"{r.pk}\t{r.status}\t{r.issuer}\tclient_id={r.client_id}\t{r.name}\t"
                f"deployments: {deployments or '-'}\t({r.registered_by})"
            )
