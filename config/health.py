"""Liveness, readiness and Prometheus metrics endpoints.

- /healthz: the process answers (no dependencies): the container/pod liveness probe.
- /readyz: the database answers a real query, the broker accepts a connection, the cache stores and returns a
  value; 503 with JSON naming what failed otherwise: the readiness probe (take the pod out of the load balancer).
- /metrics: Prometheus exposition of config/metrics.py; queue depths are sampled from the broker at scrape time
  with a short timeout and never fail the scrape.

None needs a launch. `HealthCheckMiddleware` (first in MIDDLEWARE) answers these paths before host validation and
the HTTPS redirect: probes and scrapers reach pods by IP over plain HTTP, which ALLOWED_HOSTS and
SECURE_SSL_REDIRECT would otherwise refuse.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache

from config import metrics as m

logger = logging.getLogger(__name__)

# Seconds a probe or a scrape waits for the broker: probes run every few seconds, a hung broker must not hang them.
BROKER_TIMEOUT_S = 2.0
# The queues whose depth /metrics reports (config/celery.py declares them; settings.CELERY_TASK_ROUTES uses them).
SAMPLED_QUEUES = ("default", "gpu")
# kombu's Redis transport keeps priorities 3, 6 and 9 in "<queue>\x06\x16<priority>" lists next to "<queue>".
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)


def _broker_url() -> str:
    return settings.CELERY_BROKER_URL


def _is_redis(url: str) -> bool:
    return urlsplit(url).scheme in {"redis", "rediss"}


def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S)


def _kombu_connection(url: str):
    from kombu import Connection

    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    return Connection(url, connect_timeout=BROKER_TIMEOUT_S, transport_options=options)


def check_database() -> None:
    """Raise unless the default database answers a query."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("unexpected answer to SELECT 1")


def check_broker() -> None:
    """Raise unless the Celery broker accepts a connection within BROKER_TIMEOUT_S."""
    with _kombu_connection(_broker_url()) as conn:
        conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)


def check_cache() -> None:
    """Raise unless the cache stores and returns a value (launch state lives there)."""
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("the cache did not return the value just stored")
    finally:
        cache.delete(key)


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
}


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every readiness check; return (all passed, {name: "ok" | "<ExceptionType>: <message>"})."""
    results: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the probe must answer, never raise
            # Type and first line only: the answer is public and must not echo credentials from URLs.
            results[name] = f"{type(exc).__name__}: {_redact(str(exc).splitlines()[0] if str(exc) else '')}"
            logger.warning("readiness check failed", extra={"check": name, "error": results[name]})
        else:
            results[name] = "ok"
    return all(value == "ok" for value in results.values()), results


def _redact(message: str) -> str:
    """Hide anything that looks like a password in a URL (scheme://user:secret@host)."""
    return re.sub(r"(//[^:/@\s]*:)[^@\s]*@", r"\1***@", message)[:300]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each sampled queue, read from the broker now (raises when the broker is unreachable).

    Redis: the length of the queue's list (plus kombu's priority lists). Other brokers: a passive queue_declare; a
    queue the broker does not know yet counts as empty.
    """
    url = _broker_url()
    if _is_redis(url):
        prefix = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get("global_keyprefix", "")
        client = _redis_client(url)
        try:
            pipe = client.pipeline(transaction=False)
            for queue in SAMPLED_QUEUES:
                pipe.llen(f"{prefix}{queue}")
                for step in _REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{prefix}{queue}{_REDIS_PRIORITY_SEP}{step}")
            sizes = pipe.execute()
        finally:
            client.close()
        per_queue = 1 + len(_REDIS_PRIORITY_STEPS)
        return {q: int(sum(sizes[i * per_queue : (i + 1) * per_queue])) for i, q in enumerate(SAMPLED_QUEUES)}

    depths: dict[str, int] = {}
    with _kombu_connection(url) as conn:
        conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)
        for queue in SAMPLED_QUEUES:
            channel = conn.channel()
            try:
                _, message_count, _ = channel.queue_declare(queue=queue, passive=True)
                depths[queue] = int(message_count)
            except conn.channel_errors:
                depths[queue] = 0  # not declared yet: nothing was ever sent to it
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: S110 - a channel the broker already closed (404) needs no closing
                    pass
    return depths


def sample_queue_depths() -> None:
    """Update QUEUE_DEPTH and BROKER_UP from the broker; on failure report the broker down, never raise."""
    try:
        depths = queue_depths()
    except Exception as exc:  # a scrape must never fail because the broker is down
        logger.warning("queue depth sample failed", extra={"error": _redact(f"{type(exc).__name__}: {exc}")})
        m.BROKER_UP.set(0)
        for queue in SAMPLED_QUEUES:
            try:
                m.QUEUE_DEPTH.remove(queue)  # no stale depth while we cannot see the broker
            except KeyError:
                pass
        return
    m.BROKER_UP.set(1)
    for queue, depth in depths.items():
        m.QUEUE_DEPTH.labels(queue=queue).set(depth)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process serves requests. Touches nothing else."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when database, broker and cache answer; 503 naming the failed ones otherwise."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    ok, checks = readiness()
    failed = sorted(name for name, value in checks.items() if value != "ok")
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process (or of all gunicorn workers in multiprocess mode)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    sample_queue_depths()
    return HttpResponse(generate_latest(m.exposition_registry()), content_type=CONTENT_TYPE_LATEST)


_HEALTH_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class HealthCheckMiddleware:
    """Answer /healthz, /readyz and /metrics before host validation, the HTTPS redirect, sessions and CSRF.

    Kubernetes probes and Prometheus reach a pod by its IP over plain HTTP; the views read neither the host nor
    cookies, so skipping the rest of the stack is safe. Put it first in MIDDLEWARE.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
