"""Prometheus metrics, exposed at /metrics. Import and increment; never create metrics elsewhere.

Metrics live in the default registry of each process. Under gunicorn with several workers set
PROMETHEUS_MULTIPROC_DIR (see docs/deploy.md) so /metrics aggregates all worker processes.
"""

from prometheus_client import Counter, Gauge, Histogram

LAUNCHES = Counter("lti_launches_total", "Validated LTI launches", ["message_type"])
LAUNCHES_REFUSED = Counter("lti_launches_refused_total", "Refused LTI launches", ["reason"])
ANSWERS = Counter("quiz_answers_total", "Answers submitted to multiple-choice questions", ["outcome"])
GRADING_LATENCY = Histogram(
    "grading_latency_seconds",
    "Submit-to-graded time of code submissions",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
GRADINGS = Counter("gradings_total", "Code submissions graded", ["status"])
QUEUE_DEPTH = Gauge("queue_depth", "Messages waiting in a Celery queue (sampled at scrape time)", ["queue"])
GRADEBOOK_DELIVERIES = Counter("gradebook_deliveries_total", "Score deliveries to LMS gradebooks", ["outcome"])
