"""docker-compose.yml agrees with the code: services, images, commands, queues, health checks and ports."""

from __future__ import annotations

import importlib
import re

from celery.app.utils import find_app
from django.conf import settings

from .conftest import ROOT, command_of, queues_of

APP_SERVICES = {"web", "worker-gpu", "worker-default", "beat", "migrate"}
LONG_RUNNING = {"web", "worker-gpu", "worker-default", "beat", "postgres", "redis"}


def _routed_queues() -> set[str]:
    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}


def test_the_stack_has_exactly_the_documented_services(compose):
    assert set(compose["services"]) == APP_SERVICES | {"postgres", "redis"}


def test_application_services_read_the_env_file_and_build_from_the_repository(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == ".env", name
        dockerfile = service["build"]["dockerfile"]
        assert (ROOT / service["build"]["context"] / dockerfile).is_file(), name


def test_only_the_gpu_worker_uses_the_cuda_image(compose):
    services = compose["services"]
    assert services["worker-gpu"]["build"]["dockerfile"] == "Dockerfile.worker"
    for name in APP_SERVICES - {"worker-gpu"}:
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name
        assert services[name]["image"] == services["web"]["image"], name
    assert services["worker-gpu"]["image"] != services["web"]["image"]


def test_web_runs_gunicorn_with_the_projects_wsgi_application_and_config(compose):
    command = command_of(compose["services"]["web"])
    assert command[0] == "gunicorn"
    config_file = command[command.index("-c") + 1]
    assert (ROOT / config_file).is_file()
    module = importlib.import_module(command[-1])  # config.wsgi
    assert callable(module.application)


def test_the_published_port_is_the_one_gunicorn_binds(compose):
    namespace: dict = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    port = namespace["bind"].rsplit(":", 1)[1]
    assert any(str(p).endswith(f":{port}") for p in compose["services"]["web"]["ports"])
    test = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in test


def test_celery_services_use_the_projects_celery_app(compose):
    for name in ("worker-gpu", "worker-default", "beat"):
        command = command_of(compose["services"][name])
        assert command[:3] == ["celery", "-A", "config"], name
    assert find_app("config").main == "config"


def test_every_routed_queue_has_a_worker_and_every_worker_queue_is_declared(compose):
    from config.celery import app

    declared = {queue.name for queue in app.conf.task_queues}
    consumed: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        command = command_of(service)
        if command[:1] == ["celery"] and "worker" in command:
            consumed[name] = queues_of(command)
    assert consumed == {"worker-gpu": {"gpu"}, "worker-default": {"default"}}
    assert set().union(*consumed.values()) == _routed_queues()
    assert _routed_queues() <= declared
    assert settings.CELERY_TASK_ROUTES["grading.tasks.grade_submission"]["queue"] == "gpu"


def test_the_gpu_worker_reserves_one_nvidia_gpu_and_runs_one_process(compose):
    service = compose["services"]["worker-gpu"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    command = command_of(service)
    assert command[command.index("--pool") + 1] == "solo"  # one process grades, its warm sandbox pool stays put
    # bubblewrap needs namespaces: the worker container may create them (the student code inside may not).
    assert "SYS_ADMIN" in service["cap_add"]
    assert "seccomp:unconfined" in service["security_opt"]


def test_beat_runs_once(compose):
    beats = [n for n, s in compose["services"].items() if command_of(s)[:4] == ["celery", "-A", "config", "beat"]]
    assert beats == ["beat"]
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_migrations_run_before_web_and_workers(compose):
    services = compose["services"]
    assert command_of(services["migrate"]) == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker-gpu", "worker-default", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_health_checks_and_restart_policies(compose):
    services = compose["services"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"unless-stopped", "always"}, name


def test_data_lives_in_declared_volumes(compose):
    for name in ("postgres", "redis"):
        for mount in compose["services"][name]["volumes"]:
            volume = mount.split(":", 1)[0]
            assert volume in compose["volumes"], (name, volume)
    assert any(m.endswith(":/var/lib/postgresql/data") for m in compose["services"]["postgres"]["volumes"])


def test_the_database_and_broker_urls_in_env_example_point_at_the_compose_services(compose):
    from .conftest import env_example_entries

    entries = env_example_entries()
    assert re.search(r"@postgres:5432/", entries["DATABASE_URL"][1])
    assert entries["REDIS_URL"][1].startswith("redis://redis:6379/")
    assert entries["CELERY_BROKER_URL"][1].startswith("redis://redis:6379/")
    assert entries["REDIS_URL"][1] != entries["CELERY_BROKER_URL"][1]  # cache and broker in separate Redis DBs
