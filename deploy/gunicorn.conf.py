"""Gunicorn settings for the web container: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Workers: WEB_CONCURRENCY (gunicorn reads it itself; default 2 here, about 2 per CPU core). Logs go to stdout as
JSON lines like the rest of the tool. With PROMETHEUS_MULTIPROC_DIR set, /metrics sums all worker processes: the
directory is emptied when the server starts and a dead worker's live gauges are dropped.
"""

import logging
import os
import shutil
from pathlib import Path

# Python warnings become log records too (logger "py.warnings"), so every line on stdout is JSON.
logging.captureWarnings(True)

bind = "0.0.0.0:8000"  # inside the container; publish or route it through your TLS proxy
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then (bounded memory growth), staggered so they never restart together.
max_requests = 5000
max_requests_jitter = 500
# Behind a TLS-terminating proxy Django reads X-Forwarded-Proto itself (SECURE_PROXY_SSL_HEADER_NAME); gunicorn's
# own forwarded_allow_ips stays at its default.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server) -> None:
    """Start with an empty metrics directory: files of a previous run would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges from /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
