"""Top-level URLs. Each app owns its own urls.py; the development LMS is mounted only when enabled."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("lti/", include("lti_tool.urls")),
    path("", include("quizzes.urls")),
    path("grading/", include("grading.urls")),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"

if settings.DEV_LMS_ENABLED:
    urlpatterns.append(path("devlms/", include("lti_tool.devlms.urls")))
