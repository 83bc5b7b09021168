from django.apps import AppConfig


class LtiToolConfig(AppConfig):
    name = "lti_tool"
    verbose_name = "LTI"

    def ready(self) -> None:
        from lti_tool import frames  # noqa: F401 - connects its signal receivers
