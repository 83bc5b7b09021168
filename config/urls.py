"""Top-level URLs. Each app owns its own urls.py; the development LMS is mounted only when enabled."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("lti/", include("lti_tool.urls")),
    path("", include("quizzes.urls")),
    path("grading/", include("grading.urls")),
]

if settings.DEV_LMS_ENABLED:
    urlpatterns.append(path("devlms/", include("lti_tool.devlms.urls")))
