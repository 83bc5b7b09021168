"""Settings come from the environment with safe defaults."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "DEV_LMS"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_development_mode_needs_no_configuration():
    assert _check({}).returncode == 0


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = _check({"DJANGO_ENV": "production", "DJANGO_ALLOWED_HOSTS": "tool.example.edu"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_production_mode_never_mounts_the_development_lms():
    result = _check({"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "x" * 60, "DEV_LMS_ENABLED": "1"})
    assert result.returncode != 0
    assert "development LMS cannot be enabled" in result.stderr
