from django.apps import AppConfig


class GradebookConfig(AppConfig):
    """The gradebook outbox: every score change is stored here and delivered to the LMS over AGS."""

    name = "lti_tool.gradebook"
    label = "gradebook"
    verbose_name = "Gradebook sync"
