"""Prometheus metrics, exposed at /metrics. Import and increment; never create metrics elsewhere.

Metrics live in the default registry of each process. Under gunicorn with several workers set
PROMETHEUS_MULTIPROC_DIR (see docs/deploy.md) so /metrics aggregates all worker processes.

Celery workers count gradings and gradebook deliveries in their own processes: with METRICS_WORKER_PORT set, a
worker serves its metrics at http://<worker>:<port>/metrics (started on the `worker_init` signal, aggregated over
the prefork children through PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import logging
import os
from typing import Any

# Multiprocess mode writes one file per process into this directory as metrics are created: make sure it exists.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram  # noqa: E402

logger = logging.getLogger(__name__)

LAUNCHES = Counter("lti_launches_total", "Validated LTI launches", ["message_type"])
LAUNCHES_REFUSED = Counter("lti_launches_refused_total", "Refused LTI launches", ["reason"])
ANSWERS = Counter("quiz_answers_total", "Answers submitted to multiple-choice questions", ["outcome"])
GRADING_LATENCY = Histogram(
    "grading_latency_seconds",
    "Submit-to-graded time of code submissions",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
GRADINGS = Counter("gradings_total", "Code submissions graded", ["status"])
# Sampled by whichever process serves the scrape: under multiprocess mode report the most recent sample only.
QUEUE_DEPTH = Gauge(
    "queue_depth",
    "Messages waiting in a Celery queue (sampled at scrape time)",
    ["queue"],
    multiprocess_mode="livemostrecent",
)
BROKER_UP = Gauge(
    "broker_up",
    "1 when the last queue-depth sample reached the broker, 0 when it failed",
    multiprocess_mode="livemostrecent",
)
GRADEBOOK_DELIVERIES = Counter("gradebook_deliveries_total", "Score deliveries to LMS gradebooks", ["outcome"])


def multiprocess_dir() -> str:
    """The directory of prometheus_client's multiprocess mode, or "" when each process keeps its own registry."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition_registry() -> Any:
    """The registry to expose: all processes' files in multiprocess mode, else this process's default registry."""
    from prometheus_client import REGISTRY, multiprocess

    if not multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _start_worker_metrics_server(**_: Any) -> None:
    """Serve a Celery worker's metrics on METRICS_WORKER_PORT (0 or unset: off)."""
    from django.conf import settings
    from prometheus_client import start_http_server

    port = int(getattr(settings, "METRICS_WORKER_PORT", 0) or 0)
    if not port:
        return
    start_http_server(port, addr=settings.METRICS_WORKER_ADDR, registry=exposition_registry())
    logger.info("worker metrics served", extra={"port": port})


def _mark_worker_process_dead(pid: int | None = None, **_: Any) -> None:
    """Drop a finished prefork child's live gauges (multiprocess mode only)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def connect_worker_signals() -> None:
    """Hook the worker metrics endpoint into Celery (called once by config/celery.py)."""
    from celery import signals

    signals.worker_init.connect(_start_worker_metrics_server, weak=False)
    signals.worker_process_shutdown.connect(_mark_worker_process_dead, weak=False)
