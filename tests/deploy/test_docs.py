"""The docs name things that exist: management commands, tool URLs, settings and environment variables."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from .conftest import PROCESS_ENV, ROOT, settings_env

DOCS = sorted((ROOT / "docs").glob("*.md"))
ENV_PREFIXES = r"(?:DJANGO|LTI|GRADING|GRADEBOOK|CELERY|DATABASE|REDIS|SECURE|METRICS|TOOL|WEB|PROMETHEUS|LOG|DEV_LMS)"


def _text() -> str:
    return "\n".join(path.read_text() for path in DOCS)


def test_the_docs_exist():
    names = {path.name for path in DOCS}
    assert {"deploy.md", "canvas.md", "moodle.md", "sizing.md", "instructors.md", "students.md",
            "lti-urls.md"} <= names


def test_every_management_command_in_the_docs_exists():
    named = set(re.findall(r"manage\.py ([a-z_]+)", _text()))
    assert named, "the docs name no management commands"
    missing = named - set(get_commands())
    assert not missing, f"the docs name commands that do not exist: {sorted(missing)}"
    for command in ("create_tool_key", "rotate_tool_key", "register_platform", "list_platforms",
                    "send_pending_grades", "grade_file", "grading_bench", "load_challenge_sets", "show_queues",
                    "check", "migrate", "createsuperuser"):
        assert command in named, f"{command} is not documented"


def test_every_tool_url_in_the_docs_resolves():
    # Paths with a placeholder (/lti/gradebook/<resource link>/) are left out.
    paths = {
        m.group(1)
        for m in re.finditer(r"https://tool\.example\.edu(/[^\s`'\")<>?]*)(.?)", _text())
        if m.group(2) != "<"
    }
    assert {"/lti/login/", "/lti/launch/", "/lti/jwks/", "/lti/register/", "/lti/canvas.json", "/healthz", "/readyz",
            "/metrics"} <= paths
    for path in paths:
        if path in {"/", ""} or path.endswith("/admin/"):
            continue
        try:
            resolve(path)
        except Resolver404:
            raise AssertionError(f"the docs point at {path}, which the tool does not serve") from None


def test_every_setting_or_variable_named_in_the_docs_exists():
    known = set(settings_env()) | set(PROCESS_ENV)
    named = set(re.findall(rf"`({ENV_PREFIXES}_[A-Z0-9_]+)", _text()))
    unknown = {name for name in named if name not in known and not hasattr(settings, name)}
    assert not unknown, f"the docs name settings that do not exist: {sorted(unknown)}"
