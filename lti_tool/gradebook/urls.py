"""Gradebook pages, included by lti_tool/urls.py under /lti/gradebook/ in the `lti_tool` namespace (no app_name)."""

from django.urls import path

from lti_tool.gradebook import views

urlpatterns = [
    path("<int:resource_link_pk>/", views.gradebook_status, name="gradebook_status"),
]
