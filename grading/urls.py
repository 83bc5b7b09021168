"""URLs of the grading app (mounted at /grading/)."""

from django.urls import path

from grading import views

app_name = "grading"
urlpatterns = [
    path("submissions/<uuid:submission_id>/status.json", views.status, name="status"),
]
