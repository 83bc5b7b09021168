"""The Dockerfiles build what the code expects; the web image stays free of torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .conftest import ROOT, load_compose


def _requirements(path) -> list[str]:
    """Requirement names of a requirements file, following -r includes."""
    names: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            names += _requirements(path.parent / line[2:].strip())
        elif not line.startswith("-"):
            names.append(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def _instructions(path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / path).read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_web_requirements_have_no_torch_and_worker_requirements_do():
    web = _requirements(ROOT / "requirements.txt")
    assert "torch" not in web and not any(n.startswith(("torch", "nvidia-")) for n in web)
    assert "torch" in _requirements(ROOT / "requirements-worker.txt")


def _final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of a multi-stage Dockerfile's last stage (the image that runs)."""
    start = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[start:]


def test_web_image_is_python_311_slim_with_web_requirements_only():
    steps = _final_stage(_instructions("Dockerfile"))
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    copies = " ".join(arg for op, arg in steps if op == "COPY")
    assert "pip install -r requirements.txt" in runs
    assert "requirements-worker" not in runs + copies and "torch" not in runs
    assert "manage.py collectstatic --noinput" in runs
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    assert cmd == '["gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"]'
    assert "gunicorn" in _requirements(ROOT / "requirements.txt")


def test_web_image_builds_the_code_editor_bundle_from_the_lockfile_before_collectstatic():
    steps = _instructions("Dockerfile")
    node_from = next(arg for op, arg in steps if op == "FROM")
    assert node_from.startswith("node:20") and node_from.endswith(" AS static-build")
    build_stage = steps[: len(steps) - len(_final_stage(steps))]
    runs = [arg for op, arg in build_stage if op == "RUN"]
    assert runs[0].startswith("npm ci") and "npm run --silent build" in runs[-1]
    final = _final_stage(steps)
    copied = [i for i, (op, arg) in enumerate(final) if op == "COPY" and "--from=static-build" in arg]
    collect = [i for i, (op, arg) in enumerate(final) if op == "RUN" and "collectstatic" in arg]
    assert copied and collect and copied[0] < collect[0], "the bundle must be in place before collectstatic"
    assert "static/js/build/" in final[copied[0]][1]
    # A local node_modules or bundle never enters the build context: the image builds its own from the lockfile.
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"**/node_modules", "static/js/build"} <= ignored


def test_worker_image_is_cuda_runtime_with_python_311_bubblewrap_and_torch():
    steps = _instructions("Dockerfile.worker")
    op, base = steps[0]
    assert op == "FROM" and base.startswith("nvidia/cuda:") and "runtime" in base
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "python3.11" in runs and "bubblewrap" in runs
    assert "-r requirements-worker.txt" in runs
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    compose_cmd = load_compose()["services"]["worker-gpu"]["command"]
    assert cmd == "[" + ", ".join(f'"{t}"' for t in compose_cmd) + "]"


def test_the_images_python_matches_the_project():
    assert sys.version_info[:2] == (3, 11)
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def test_the_build_context_leaves_out_local_state_and_secrets():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "db.sqlite3", ".cache"} <= ignored


def test_the_web_process_never_imports_torch():
    # What gunicorn loads (the WSGI application and every URL module with its views) must not pull torch in.
    code = (
        "import sys, config.wsgi\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "import django.apps\n"
        "[__import__(a.name + '.views') for a in django.apps.apps.get_app_configs() "
        " if __import__('importlib.util').util.find_spec(a.name + '.views')]\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_the_worker_entry_point_prepares_cgroups_and_then_runs_the_command():
    steps = _instructions("Dockerfile.worker")
    entrypoint = [arg for op, arg in steps if op == "ENTRYPOINT"][-1]
    assert entrypoint == '["/app/deploy/worker-entrypoint.sh"]'
    script = ROOT / "deploy" / "worker-entrypoint.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    lines = [line for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[-1] == 'exec "$@"'  # the CMD (celery) replaces the shell: signals reach Celery directly
    assert load_compose()["services"]["worker-gpu"]["cgroup"] == "private"
