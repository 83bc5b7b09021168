"""Settings, read from the environment (12-factor). Every variable is documented in `.env.example`.

Two modes:
- development (default, nothing configured): debug on, SQLite unless DATABASE_URL is set, a broker that needs no
  server, any platform may register by Dynamic Registration, the development LMS is mounted at /devlms/.
- production (`DJANGO_ENV=production`): debug off, a secret key and allowed hosts are required, HTTPS cookies,
  registration follows IT's rules, the development LMS is off, grading refuses to run without the sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Mode -----------------------------------------------------------------------------------------------------
DJANGO_ENV = env("DJANGO_ENV", "development").lower()
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'development' or 'production'")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_ENV=production")
    # Development only: a fixed, public, insecure key so web and worker processes agree.
    SECRET_KEY = "django-insecure-development-only-never-use-in-production"

_DEV_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else _DEV_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Public base URL of the tool (used in Dynamic Registration, the Canvas JSON config and deep links when there is no
# request to derive it from, e.g. in Celery tasks). Empty: derived from the request.
TOOL_BASE_URL = env("TOOL_BASE_URL", "").rstrip("/")

# --- Apps -----------------------------------------------------------------------------------------------------
DEV_LMS_ENABLED = env_bool("DEV_LMS_ENABLED", not PRODUCTION)
if PRODUCTION and DEV_LMS_ENABLED:
    raise ImproperlyConfigured("The development LMS cannot be enabled in production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "lti_tool",
    "lti_tool.gradebook",
    "quizzes",
    "grading",
]
if DEV_LMS_ENABLED:
    INSTALLED_APPS.append("lti_tool.devlms")

MIDDLEWARE = [
    # /healthz, /readyz and /metrics answer here, before host checks and the HTTPS redirect (probes use pod IPs).
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Cookies that survive LMS iframes (SameSite=None; Secure; Partitioned over HTTPS) and the CSP frame-ancestors.
    # Above the session and CSRF middleware so its response phase sees the cookies they set.
    "lti_tool.middleware.LtiFrameMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The tool's own pages for expected errors (oversized body, unknown URL, locked database...), DEBUG or not.
    "config.errors.ExpectedErrorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's web server, worker and beat write one file at once. WAL lets reads run beside a write; IMMEDIATE
    # takes the write lock at BEGIN, since a transaction that read first and then writes fails at once with
    # "database is locked" whatever the timeout; the timeout makes writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        **DATABASES["default"].get("OPTIONS", {}),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (launch state, nonces, JWKS, access tokens). Redis in production; a file cache shared by the local
# processes otherwise (the web server and the workers of `make demo` must see the same launch state).
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env("FILE_CACHE_DIR", str(BASE_DIR / ".cache" / "django")),
        }
    }

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- HTTPS, cookies and iframes ---------------------------------------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME=HTTP_X_FORWARDED_PROTO so request.is_secure() is
# true: LTI cookies need SameSite=None; Secure, which are only set on secure requests.
_proxy_header = env("SECURE_PROXY_SSL_HEADER_NAME", "HTTP_X_FORWARDED_PROTO" if PRODUCTION else "")
SECURE_PROXY_SSL_HEADER = (_proxy_header, "https") if _proxy_header else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# The tool lives inside LMS iframes: framing is governed by CSP frame-ancestors (LtiFrameMiddleware), not
# X-Frame-Options, which cannot list several origins.
X_FRAME_OPTIONS = "SAMEORIGIN"
# W002/W019 ask for X-Frame-Options: DENY, which would break every LMS iframe; CSP frame-ancestors replaces it.
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W019"]
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_SAMESITE = "None" if PRODUCTION else "Lax"
CSRF_COOKIE_SAMESITE = "None" if PRODUCTION else "Lax"
SESSION_COOKIE_HTTPONLY = True

# --- Auth (the Django admin is for IT; students and instructors come through LTI launches) -----------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Project-wide assets (static/css/app.css, static/js/*): not inside an app, so they need their own finder entry.
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Bounded input everywhere: no request body beyond 1 MB, no more than 200 form fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1_048_576)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"

# --- LTI --------------------------------------------------------------------------------------------------------
# Dynamic Registration policy. "open": any platform may register and is active at once (development default).
# "allowlist": only issuers in LTI_REGISTRATION_ALLOWED_ISSUERS may register; they are active at once.
# "approval": any platform may register but stays pending until IT approves it in the admin (production default).
LTI_REGISTRATION_POLICY = env("LTI_REGISTRATION_POLICY", "approval" if PRODUCTION else "open")
LTI_REGISTRATION_ALLOWED_ISSUERS = env_list("LTI_REGISTRATION_ALLOWED_ISSUERS", [])
# Optional access code IT hands out: /lti/register/?access_code=... (empty: no code needed).
LTI_REGISTRATION_ACCESS_CODE = env("LTI_REGISTRATION_ACCESS_CODE", "")
LTI_CLOCK_LEEWAY_S = env_int("LTI_CLOCK_LEEWAY_S", 30)
LTI_HTTP_TIMEOUT_S = env_float("LTI_HTTP_TIMEOUT_S", 10.0)
LTI_TOOL_TITLE = env("LTI_TOOL_TITLE", "ResNet Challenges")
# Extra origins allowed to frame the tool (CSP frame-ancestors), comma separated, for LMSs whose pages are not served
# from their issuer's or OIDC endpoint's origin (e.g. https://*.blackboard.com). Registered platforms are automatic.
LTI_FRAME_ANCESTORS_EXTRA = env_list("LTI_FRAME_ANCESTORS_EXTRA", [])
# Platform URLs (OpenID configuration, registration endpoint, JWKS, token, AGS/NRPS) may resolve to loopback, private
# or link-local addresses only when this is on (a university Moodle on a private network). Off: such URLs are refused
# before any connection, so an anonymous Dynamic Registration cannot probe the internal network.
LTI_ALLOW_PRIVATE_PLATFORM_URLS = env_bool("LTI_ALLOW_PRIVATE_PLATFORM_URLS", not PRODUCTION)
# A launch naming a deployment id the tool has not seen: "approval" (recorded as pending, refused until IT activates
# it in the admin) or "auto" (accepted at once: a registration IT trusts with every deployment).
LTI_DEPLOYMENT_POLICY = env("LTI_DEPLOYMENT_POLICY", "approval")
if LTI_DEPLOYMENT_POLICY not in {"approval", "auto"}:
    raise ImproperlyConfigured("LTI_DEPLOYMENT_POLICY must be 'approval' or 'auto'")
# Rate limits per client address, "N/S": at most N requests in S seconds (429 with Retry-After beyond).
LTI_RATE_LIMIT_LOGIN = env("LTI_RATE_LIMIT_LOGIN", "60/10")
LTI_RATE_LIMIT_REGISTER = env("LTI_RATE_LIMIT_REGISTER", "10/60")
for _rate in (LTI_RATE_LIMIT_LOGIN, LTI_RATE_LIMIT_REGISTER):
    _count, _, _seconds = _rate.partition("/")
    if not (_count.isdigit() and _seconds.isdigit() and int(_count) > 0 and int(_seconds) > 0):
        raise ImproperlyConfigured(f"LTI rate limits are N/S (N requests in S seconds), not {_rate!r}")
# Proxies in front of the tool that append the client's address to X-Forwarded-For (0: the client is the peer of the
# web server, REMOTE_ADDR). Only trusted proxies count: a client can write any X-Forwarded-For it likes.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Gradebook (AGS) delivery: exponential backoff with jitter between attempts (base doubling up to the cap); a score
# the LMS has not accepted is retried for GRADEBOOK_RETRY_BUDGET_S (LMS outages last hours: at least a day in
# production) and then shown to the instructor as refused. The sweeper re-enqueues a waiting score whose task was
# enqueued GRADEBOOK_REQUEUE_AFTER_S ago and never ran (a message the broker lost).
GRADEBOOK_BACKOFF_BASE_S = env_float("GRADEBOOK_BACKOFF_BASE_S", 10.0)
GRADEBOOK_BACKOFF_CAP_S = env_float("GRADEBOOK_BACKOFF_CAP_S", 1800.0)
GRADEBOOK_RETRY_BUDGET_S = env_float("GRADEBOOK_RETRY_BUDGET_S", 48 * 3600.0)
GRADEBOOK_REQUEUE_AFTER_S = env_float("GRADEBOOK_REQUEUE_AFTER_S", 300.0)
if PRODUCTION and GRADEBOOK_RETRY_BUDGET_S < 24 * 3600:
    raise ImproperlyConfigured("GRADEBOOK_RETRY_BUDGET_S must be at least 86400 (one day) in production")
# A grade a teacher changed by hand in the LMS: "keep" it (a later tool score is not sent; the instructor's "Send all
# grades again" still replaces it) or "overwrite" it with the tool's next score.
GRADEBOOK_TEACHER_GRADES = env("GRADEBOOK_TEACHER_GRADES", "keep")
if GRADEBOOK_TEACHER_GRADES not in {"keep", "overwrite"}:
    raise ImproperlyConfigured("GRADEBOOK_TEACHER_GRADES must be 'keep' or 'overwrite'")

# --- Celery -----------------------------------------------------------------------------------------------------
# Unset: the filesystem transport (no server; works across the local processes of `make demo`).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
_BROKER_DIR = Path(env("CELERY_FILESYSTEM_BROKER_DIR", str(BASE_DIR / ".cache" / "broker")))
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in (_BROKER_DIR / "processed", _BROKER_DIR / "control"):
        _folder.mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_BROKER_DIR),
        "data_folder_out": str(_BROKER_DIR),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600)}
)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"grading.tasks.grade_submission": {"queue": "gpu"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False
# Workers log through LOGGING below (JSON lines) instead of Celery replacing the root logger with its own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    # The database is the truth, the broker is not: these sweepers re-enqueue whatever the broker lost.
    "finalise-expired-attempts": {"task": "quizzes.tasks.finalise_expired_attempts", "schedule": 30.0},
    "requeue-stale-submissions": {"task": "grading.tasks.requeue_stale_submissions", "schedule": 30.0},
    "deliver-due-scores": {"task": "lti_tool.tasks.deliver_due_scores", "schedule": 15.0},
}

# --- Grading ----------------------------------------------------------------------------------------------------
# "bwrap": bubblewrap sandbox (required in production). "unsafe": runs student code without isolation, only for a
# demo on a machine without bubblewrap; loudly warned, refused in production.
GRADING_SANDBOX = env("GRADING_SANDBOX", "bwrap")
if PRODUCTION and GRADING_SANDBOX != "bwrap":
    raise ImproperlyConfigured("Production grading requires GRADING_SANDBOX=bwrap")
GRADING_BWRAP_PATH = env("GRADING_BWRAP_PATH", "bwrap")
GRADING_DEVICE = env("GRADING_DEVICE", "auto")  # auto | cpu | cuda
GRADING_POOL_SIZE = env_int("GRADING_POOL_SIZE", 1)
GRADING_POOL_WARMING = env_int("GRADING_POOL_WARMING", 0)  # sandboxes warming at once; 0: half the CPU cores
GRADING_TIMEOUT_S = env_float("GRADING_TIMEOUT_S", 60.0)
GRADING_MEMORY_MB = env_int("GRADING_MEMORY_MB", 2048)
GRADING_GPU_MEMORY_FRACTION = env_float("GRADING_GPU_MEMORY_FRACTION", 0.25)
GRADING_OUTPUT_LIMIT_BYTES = env_int("GRADING_OUTPUT_LIMIT_BYTES", 1_048_576)
GRADING_CODE_LIMIT_BYTES = env_int("GRADING_CODE_LIMIT_BYTES", 65_536)
# The sweeper re-enqueues submissions still queued (or in error) after this many seconds, and gives up on one
# whose worker died GRADING_MAX_DELIVERIES times.
GRADING_REQUEUE_AFTER_S = env_float("GRADING_REQUEUE_AFTER_S", 120.0)
GRADING_MAX_DELIVERIES = env_int("GRADING_MAX_DELIVERIES", 5)

# --- Metrics: web processes serve /metrics; a Celery worker serves its own on this port when set (0: off) ---------
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_ADDR = env("METRICS_WORKER_ADDR", "0.0.0.0")  # noqa: S104 - inside the worker's container/pod

# --- Logging: structured (one JSON object a line) -----------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.server": {"level": "WARNING"}},
}
