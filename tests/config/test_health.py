"""/healthz, /readyz and /metrics: what probes and Prometheus see, against the real database, Redis and broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from kombu import Connection

from config import metrics as m

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once


def _run_django(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh Django process with the given environment (on top of this one's)."""
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    prelude = "import django, json; django.setup()\nfrom django.test import Client\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def broker(settings):
    """The tests' Redis broker under a key prefix of its own, so Celery workers of other tests never consume (or
    add to) the queues these tests count. Yields a function that publishes n messages to a queue through kombu."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "run the tests with a Redis CELERY_BROKER_URL"
    prefix = f"test-health-{uuid.uuid4().hex[:8]}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}

    def publish(queue: str, n: int = 1, priority: int | None = None) -> None:
        with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as c:
            simple = c.SimpleQueue(queue)
            for i in range(n):
                simple.put({"n": i}, priority=priority)
            simple.close()

    yield publish
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


# --- /healthz ----------------------------------------------------------------------------------------------------


def test_healthz_answers_ok_without_touching_the_database(client):
    # No django_db mark: any database access in the request would raise here.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@override_settings(ALLOWED_HOSTS=["tool.example.edu"], SECURE_SSL_REDIRECT=True)
def test_probes_reach_health_endpoints_by_pod_ip_over_plain_http(client):
    # Kubernetes probes send Host: <pod IP>:8000 over HTTP; a production tool must still answer them.
    for path in ("/healthz", "/metrics"):
        response = client.get(path, HTTP_HOST="10.1.2.3:8000")
        assert response.status_code == 200, path
    # The same request to any other page is refused as usual (bad host): the exemption is only for the probes.
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@override_settings(ALLOWED_HOSTS=["tool.example.edu"], SECURE_SSL_REDIRECT=True)
def test_other_pages_are_still_redirected_to_https(client):
    response = client.get("/admin/login/", HTTP_HOST="tool.example.edu")
    assert response.status_code == 301
    assert response["Location"].startswith("https://tool.example.edu/")


def test_health_endpoints_accept_only_get_and_head(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.post(path).status_code == 405, path
        assert client.head(path).status_code in (200, 503), path


# --- /readyz ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_ok_when_database_broker_and_cache_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL=UNREACHABLE_REDIS)
def test_readyz_names_an_unreachable_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"] == "ok" and body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"] != "ok"


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://:hunter2-secret@127.0.0.1:1/0")
def test_readyz_never_echoes_broker_credentials(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert b"hunter2-secret" not in response.content


@pytest.mark.django_db
@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE_REDIS}}
)
def test_readyz_names_an_unreachable_cache(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]


@pytest.mark.django_db
def test_readyz_names_an_unreachable_database():
    # A fresh process whose DATABASE_URL points at a port where nothing listens.
    result = _run_django(
        "r = Client().get('/readyz')\nprint(json.dumps({'status': r.status_code, 'body': r.json()}))",
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing?connect_timeout=2"},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["failed"] == ["database"]
    assert answer["body"]["checks"]["broker"] == "ok"


def test_health_endpoints_need_no_launch_and_no_session(client):
    # No cookies at all (a probe or a scraper): still answered, and no session cookie is set.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies


# --- /metrics -----------------------------------------------------------------------------------------------------


def _sample(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample line `name{labels} value` in a Prometheus exposition, or None."""
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return None


def test_metrics_exposes_every_metric_of_the_registry(client):
    m.LAUNCHES.labels(message_type="LtiResourceLinkRequest").inc()
    m.LAUNCHES_REFUSED.labels(reason="replayed_nonce").inc()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for name in (
        "lti_launches_total",
        "lti_launches_refused_total",
        "quiz_answers_total",
        "grading_latency_seconds",
        "gradings_total",
        "queue_depth",
        "broker_up",
        "gradebook_deliveries_total",
    ):
        assert f"# TYPE {name} " in text, name
    assert _sample(text, "lti_launches_refused_total", 'reason="replayed_nonce"') >= 1


def test_metrics_samples_queue_depth_from_the_redis_broker(client, broker, settings):
    broker("gpu", 3)
    broker("default", 1)
    broker("default", 1, priority=9)  # kombu keeps it in a separate priority list

    text = client.get("/metrics").content.decode()
    assert _sample(text, "queue_depth", 'queue="gpu"') == 3
    assert _sample(text, "queue_depth", 'queue="default"') == 2
    assert _sample(text, "broker_up") == 1

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(f"{prefix}gpu")  # a worker took them all
    text = client.get("/metrics").content.decode()
    assert _sample(text, "queue_depth", 'queue="gpu"') == 0


@override_settings(CELERY_BROKER_URL=UNREACHABLE_REDIS)
def test_metrics_scrape_survives_a_broker_outage(client):
    m.QUEUE_DEPTH.labels(queue="gpu").set(7)  # a stale sample from before the outage
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert _sample(text, "broker_up") == 0
    assert _sample(text, "queue_depth", 'queue="gpu"') is None  # no stale depth while the broker is unseen


def test_metrics_samples_queue_depth_through_a_non_redis_transport(client, tmp_path):
    # Any kombu transport other than Redis is read with a passive queue_declare (here the filesystem transport).
    from kombu import Connection

    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "processed_folder": str(tmp_path),
        "control_folder": str(tmp_path),  # else kombu writes a control/ folder into the working directory
    }
    with Connection("filesystem://", transport_options=options) as conn:
        queue = conn.SimpleQueue("gpu")
        queue.put({"n": 1})
        queue.put({"n": 2})
        queue.close()
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options):
        text = client.get("/metrics").content.decode()
    assert _sample(text, "queue_depth", 'queue="gpu"') == 2
    assert _sample(text, "queue_depth", 'queue="default"') == 0
    assert _sample(text, "broker_up") == 1


def test_metrics_aggregate_gunicorn_workers_in_multiprocess_mode(tmp_path):
    # Two "worker" processes count launches into PROMETHEUS_MULTIPROC_DIR; a third serves /metrics with the sum.
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from config import metrics as m\nm.LAUNCHES.labels(message_type='LtiResourceLinkRequest').inc({n})\n"
    for n in (2, 3):
        result = _run_django(count.format(n=n), env)
        assert result.returncode == 0, result.stderr
    result = _run_django("print(Client().get('/metrics').content.decode())", env)
    assert result.returncode == 0, result.stderr
    assert _sample(result.stdout, "lti_launches_total", 'message_type="LtiResourceLinkRequest"') == 5
