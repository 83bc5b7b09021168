"""Helpers to read the deployment files (docker-compose.yml, Dockerfiles, Kubernetes manifests, .env.example)."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "deploy" / "kubernetes"

# Environment variables that are not Django settings: read by the servers or images themselves.
PROCESS_ENV = {
    "WEB_CONCURRENCY": "gunicorn worker count (deploy/gunicorn.conf.py)",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client multiprocess directory",
    "POSTGRES_USER": "postgres image",
    "POSTGRES_PASSWORD": "postgres image",
    "POSTGRES_DB": "postgres image",
    "CUDA_VISIBLE_DEVICES": "CUDA: which GPU a grading worker uses",
    "POD_NAME": "Kubernetes downward API: the Celery worker's node name",
}
_ENV_READERS = {"env", "env_bool", "env_int", "env_float", "env_list", "os.environ.get", "os.getenv"}


def settings_env() -> dict[str, ast.expr | None]:
    """Every environment variable config/settings.py reads, with the AST of its default (None when absent)."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    found: dict[str, ast.expr | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in _ENV_READERS:
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found[node.args[0].value] = node.args[1] if len(node.args) > 1 else None
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                found[node.slice.value] = None
    return found


def env_example_entries() -> dict[str, tuple[str, str, bool]]:
    """NAME -> (comment line above it, value, active) for every `NAME=value` or `# NAME=value` in .env.example."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    entries: dict[str, tuple[str, str, bool]] = {}
    for i, line in enumerate(lines):
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            entries[match.group(2)] = (lines[i - 1] if i else "", match.group(3), match.group(1) is None)
    return entries


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service: dict) -> list[str]:
    """A compose service's or Kubernetes container's command (Kubernetes `args` when the image's entry point runs)."""
    command = service.get("command") or service.get("args") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def queues_of(command: list[str]) -> set[str]:
    """The queues a `celery ... worker -Q a,b` command consumes."""
    for flag in ("-Q", "--queues"):
        if flag in command:
            return set(command[command.index(flag) + 1].split(","))
    return set()


def kube_documents() -> list[dict]:
    """Every object of the manifests kustomization.yaml applies."""
    kustomization = yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in kustomization["resources"]:
        docs.extend(doc for doc in yaml.safe_load_all((KUBE_DIR / resource).read_text()) if doc)
    return docs


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def kube() -> list[dict]:
    return kube_documents()
