"""A Celery worker serves its own Prometheus metrics (gradings, gradebook deliveries) on METRICS_WORKER_PORT."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.worker
def test_a_celery_worker_serves_metrics_on_its_port_and_logs_json(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "METRICS_WORKER_PORT": str(port),
        "METRICS_WORKER_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    # A queue of its own: this worker must not run other tests' leftover tasks.
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", f"metrics-test-{port}", "-c", "1",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"metrics-test-{port}@%h",
         "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        text = None
        for _ in range(120):  # bounded: the worker needs a few seconds to boot on a busy machine
            if worker.poll() is not None:
                pytest.fail(f"the worker exited: {log_path.read_text()[-2000:]}")
            try:
                response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except requests.ConnectionError:
                time.sleep(0.5)
                continue
            text = response.text
            break
        assert text is not None, "the worker never served /metrics"
        # Multiprocess exposition: the unlabelled grading latency histogram is there from the start (labelled
        # counters appear with their first increment).
        assert "# TYPE grading_latency_seconds histogram" in text
        assert "grading_latency_seconds_count 0.0" in text
        for _ in range(120):  # bounded: let it finish starting before stopping it
            if "ready." in log_path.read_text():
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
    # Its log records are JSON lines like the web's (Celery does not replace the root logger's format).
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(r["logger"] == "celery.apps.worker" and r["msg"].endswith("ready.") for r in records)
    assert not any(line.startswith("[20") for line in log_path.read_text().splitlines())  # Celery's own format
