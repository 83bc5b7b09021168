"""Security headers: HSTS behind TLS in production, CSP frame-ancestors limited to registered platforms, no CDNs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from lti_tool.models import Registration
from tests.factories import RegistrationFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "hsts-test-" + "Zq8wX3rT5yU1iO0p" * 4,
    "DJANGO_ALLOWED_HOSTS": "tool.example.edu",
}


def _production_get(path: str, *, secure: bool) -> dict:
    """GET `path` in a fresh production-mode process (against the test database); status and headers as a dict."""
    db = settings.DATABASES["default"]
    code = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        f"r = Client().get({path!r}, secure={secure!r}, HTTP_HOST='tool.example.edu')\n"
        "print(json.dumps({'status': r.status_code, 'headers': dict(r.headers)}))\n"
    )
    env = {
        **os.environ,
        **PRODUCTION,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_production_sends_hsts_on_https_responses():
    answer = _production_get("/lti/jwks/", secure=True)
    assert answer["status"] == 200
    assert answer["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db(transaction=True)
def test_production_redirects_plain_http_to_https():
    answer = _production_get("/lti/jwks/", secure=False)
    assert answer["status"] == 301
    assert answer["headers"]["Location"] == "https://tool.example.edu/lti/jwks/"


def test_development_sends_no_hsts(client):
    # HSTS on localhost would pin every local site to HTTPS for a year.
    response = client.get("/lti/login/", secure=True)
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.django_db
def test_tool_pages_may_be_framed_only_by_registered_active_platforms(client):
    from lti_tool.frames import forget_frame_ancestors

    RegistrationFactory(issuer="https://moodle.example.edu", auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
                        status=Registration.Status.ACTIVE)
    RegistrationFactory(issuer="https://pending.example.org", auth_login_url="https://pending.example.org/auth",
                        status=Registration.Status.PENDING)
    forget_frame_ancestors()
    try:
        # A tool page: the player, here refusing a browser that has not launched (its own pages are framed alike).
        response = client.get(reverse("quizzes:player", kwargs={"resource_link_pk": 1}))
    finally:
        forget_frame_ancestors()
    csp = response.headers["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]*)", csp).group(1).split()
    assert "'self'" in ancestors
    assert "https://moodle.example.edu" in ancestors
    assert "https://pending.example.org" not in ancestors
    assert "*" not in ancestors
    assert "X-Frame-Options" not in response.headers  # would block the LMS iframe
    assert "script-src 'self'" in csp  # no external script origins


def _asset_files() -> list[Path]:
    roots = [ROOT / "templates", ROOT / "static", *ROOT.glob("*/templates"), *ROOT.glob("*/static"),
             *ROOT.glob("*/*/templates"), *ROOT.glob("*/*/static")]
    files: list[Path] = []
    for root in roots:
        if root.is_dir() and ".venv" not in root.parts:
            files += [p for p in root.rglob("*") if p.suffix in {".html", ".css", ".js"}]
    return files


def test_no_page_loads_scripts_styles_or_fonts_from_another_origin():
    external = re.compile(
        r"""(<script[^>]+src\s*=\s*["']?(https?:)?//|<link[^>]+href\s*=\s*["']?(https?:)?//"""
        r"""|@import\s+(url\()?["']?(https?:)?//|url\(\s*["']?(https?:)?//)""",
        re.IGNORECASE,
    )
    files = _asset_files()
    assert files, "no templates or static files found"
    offenders = [str(p.relative_to(ROOT)) for p in files if external.search(p.read_text(errors="replace"))]
    assert not offenders, f"external assets (CDNs) referenced in: {offenders}"
