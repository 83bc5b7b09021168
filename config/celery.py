"""The Celery app. Queues: `gpu` (code grading, one worker process per GPU) and `default` (everything else)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()

# Workers serve their own Prometheus metrics when METRICS_WORKER_PORT is set (see config/metrics.py).
from config.metrics import connect_worker_signals  # noqa: E402

connect_worker_signals()
