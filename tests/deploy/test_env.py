"""Every setting is documented in .env.example (with its default) and every variable the deployment sets exists."""

from __future__ import annotations

import ast
import re

from .conftest import PROCESS_ENV, ROOT, command_of, env_example_entries, kube_documents, load_compose, settings_env


def _constant_default(node: ast.expr | None) -> float | int | str | None:
    """The value of a default made only of literals and arithmetic (e.g. 48 * 3600.0), else None."""
    if node is None:
        return None
    for sub in ast.walk(node):
        if not isinstance(sub, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.expr_context)):
            return None
    return eval(compile(ast.Expression(node), "<default>", "eval"))  # noqa: S307 - literals only (checked above)


def _spellings(value: float | int | str) -> set[str]:
    if isinstance(value, float) and value.is_integer():
        return {str(value), str(int(value))}
    return {str(value)}


def test_every_setting_is_in_env_example():
    missing = set(settings_env()) - set(env_example_entries())
    assert not missing, f"document these settings in .env.example: {sorted(missing)}"


def test_env_example_has_no_unknown_variables():
    unknown = set(env_example_entries()) - set(settings_env()) - set(PROCESS_ENV)
    assert not unknown, f".env.example sets variables no code reads: {sorted(unknown)}"


def test_each_variable_has_one_comment_line_with_its_default():
    defaults = settings_env()
    for name, (comment, _, _) in env_example_entries().items():
        assert comment.startswith("# ") and "Default" in comment, f"{name}: no comment line with the default above"
        assert not re.match(r"^#\s*[A-Z][A-Z0-9_]*=", comment), f"{name}: the line above is another variable"
        value = _constant_default(defaults.get(name))
        if value not in (None, ""):
            assert any(s in comment for s in _spellings(value)), f"{name}: comment does not state default {value!r}"


def test_production_essentials_are_set_in_env_example():
    entries = env_example_entries()
    for name in ("DJANGO_ENV", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                 "CELERY_BROKER_URL"):
        assert entries[name][2], f"{name} must be an active line in .env.example"
    assert entries["DJANGO_ENV"][1] == "production"


def test_compose_only_sets_known_variables():
    known = set(settings_env()) | set(PROCESS_ENV)
    compose = load_compose()
    text = (ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert interpolated <= known, sorted(interpolated - known)
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        keys = set(environment) if isinstance(environment, dict) else {e.split("=", 1)[0] for e in environment}
        assert keys <= known, (name, sorted(keys - known))


def test_kubernetes_only_sets_known_variables():
    known = set(settings_env()) | set(PROCESS_ENV)
    for doc in kube_documents():
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) <= known, sorted(set(doc["data"]) - known)
        for container in _containers(doc):
            names = {e["name"] for e in container.get("env", [])}
            assert names <= known, (doc["metadata"]["name"], sorted(names - known))
            for token in command_of(container):
                assert set(re.findall(r"\$\(([A-Z_]+)\)", token)) <= names


def test_the_kubernetes_secret_example_holds_only_settings():
    import yaml

    from .conftest import KUBE_DIR

    secret = yaml.safe_load((KUBE_DIR / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) <= set(settings_env())
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL"} <= set(secret["stringData"])


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    template = spec.get("template", {}) or spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
    return template.get("spec", {}).get("containers", []) if template else []
