"""The root page: what this server is and where its LMS-facing URLs are (nothing here needs a launch)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    def url(name: str) -> str:
        return request.build_absolute_uri(reverse(name))

    return render(
        request,
        "home.html",
        {
            "title": settings.LTI_TOOL_TITLE,
            "devlms_url": url("devlms:home") if settings.DEV_LMS_ENABLED else "",
            "admin_urls": [
                ("Dynamic Registration (paste into Canvas or Moodle)", url("lti_tool:register")),
                ("Canvas developer key by URL", url("lti_tool:canvas_config")),
                ("OIDC login initiation", url("lti_tool:login")),
                ("Launch / redirect URI", url("lti_tool:launch")),
                ("Tool public keys (JWKS)", url("lti_tool:jwks")),
            ],
            "health_url": url("healthz"),
        },
    )
