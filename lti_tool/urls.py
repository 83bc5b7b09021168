from django.urls import path  # noqa: F401

app_name = "lti_tool"
urlpatterns: list = []
