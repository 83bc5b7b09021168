from django.apps import AppConfig


class DevLmsConfig(AppConfig):
    """The development LMS: an LTI 1.3 platform for the demo and the tests. Never enabled in production."""

    name = "lti_tool.devlms"
    label = "devlms"
    verbose_name = "Development LMS"
