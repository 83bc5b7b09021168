"""LTI endpoints (mounted at /lti/ by config/urls.py)."""

import importlib.util

from django.urls import include, path

from lti_tool import views

app_name = "lti_tool"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    path("register/", views.register, name="register"),
    path("canvas.json", views.canvas_config, name="canvas_config"),
]

# The gradebook pages (lti_tool:gradebook_status, ...) live in lti_tool/gradebook/urls.py, in this namespace.
if importlib.util.find_spec("lti_tool.gradebook.urls") is not None:
    urlpatterns.append(path("gradebook/", include("lti_tool.gradebook.urls")))
