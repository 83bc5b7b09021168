"""The web container's command, run for real: gunicorn with deploy/gunicorn.conf.py in production mode behind a
TLS-terminating proxy (simulated by the X-Forwarded-Proto header), probes by pod IP, metrics and JSON logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings

from .conftest import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_server(transactional_db, tmp_path):
    db = settings.DATABASES["default"]
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "gunicorn-test-" + "Qm4vB8nX2cZ7kL1p" * 4,
        "DJANGO_ALLOWED_HOSTS": "tool.example.edu",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
             "config.wsgi"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):  # bounded wait for the workers to boot
                if server.poll() is not None:
                    pytest.fail(f"gunicorn exited: {log_path.read_text()[-2000:]}")
                try:
                    requests.get(base + "/healthz", timeout=5)
                    break
                except requests.RequestException:
                    time.sleep(0.5)
            yield base, log_path
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_the_web_container_serves_probes_https_pages_metrics_and_json_logs(production_server):
    base, log_path = production_server
    pod_ip = {"Host": "10.1.2.3:8000"}
    assert requests.get(base + "/healthz", headers=pod_ip, timeout=10).json() == {"status": "ok"}
    ready = requests.get(base + "/readyz", headers=pod_ip, timeout=10)
    assert ready.status_code == 200, ready.text

    # Plain HTTP to a tool page is redirected to HTTPS; through the TLS proxy it is served with HSTS.
    plain = requests.get(base + "/lti/jwks/", headers={"Host": "tool.example.edu"}, allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"] == "https://tool.example.edu/lti/jwks/"
    proxied = requests.get(
        base + "/lti/jwks/", headers={"Host": "tool.example.edu", "X-Forwarded-Proto": "https"}, timeout=10
    )
    assert proxied.status_code == 200
    assert proxied.json()["keys"]
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # An unknown host is refused (ALLOWED_HOSTS holds for everything but the probes).
    assert requests.get(base + "/lti/jwks/", headers={"Host": "evil.example.com", "X-Forwarded-Proto": "https"},
                        timeout=10).status_code == 400

    metrics = requests.get(base + "/metrics", headers=pod_ip, timeout=10)
    assert metrics.status_code == 200
    assert 'queue_depth{queue="gpu"}' in metrics.text
    assert "broker_up 1.0" in metrics.text

    # Structured logs: every line gunicorn and Django wrote is a JSON object (access log lines included).
    time.sleep(0.5)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= record.keys() for record in records)
    assert any(r["logger"] == "gunicorn.access" and "/lti/jwks/" in r["msg"] for r in records)
