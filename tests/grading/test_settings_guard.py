"""Production refuses the unsafe grading mode (settings are read at start-up, so a fresh interpreter checks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GRADING_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.GRADING_SANDBOX)"],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env}, cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )


def test_production_refuses_unsafe_grading():
    result = load_settings(DJANGO_ENV="production", DJANGO_SECRET_KEY="k" * 50, DJANGO_ALLOWED_HOSTS="tool.example",
                           GRADING_SANDBOX="unsafe")
    assert result.returncode != 0
    assert "Production grading requires GRADING_SANDBOX=bwrap" in result.stderr


def test_development_allows_the_loudly_warned_unsafe_demo_mode():
    result = load_settings(GRADING_SANDBOX="unsafe")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "unsafe"
