"""`python manage.py check --deploy` is clean in production settings: the documented configuration check."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT, env_example_entries


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    # Start from a clean slate: none of this test run's own settings leak into the checked configuration.
    clean = {k: v for k, v in os.environ.items() if k not in env_example_entries() and not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )


SECRET = "k8s-" + "x7Qp2vLm9RzT4wYc" * 4  # long, varied, not prefixed "django-insecure-"


def test_production_settings_pass_check_deploy_without_warnings():
    result = _check_deploy({
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "tool.example.edu",
        "DATABASE_URL": "postgres://tool:pw@db.example.edu:5432/tool",
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_env_example_as_shipped_passes_check_deploy_once_its_secrets_are_filled_in():
    env = {name: value for name, (_, value, active) in env_example_entries().items() if active}
    env = {name: value.replace("CHANGE-ME", SECRET if name == "DJANGO_SECRET_KEY" else "pw") for name, value in
           env.items()}
    result = _check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_development_defaults_are_flagged_by_check_deploy():
    # The check is worth running: the development defaults (debug on, insecure key) fail it.
    result = _check_deploy({})
    assert result.returncode != 0
    assert "security.W018" in result.stderr or "security.W018" in result.stdout  # DEBUG on
