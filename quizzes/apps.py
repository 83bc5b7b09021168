from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def load_content_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Store the challenge sets in any freshly migrated (or flushed) database, so a new install works at once."""
    from quizzes.content import load_challenge_sets
    from quizzes.models import ChallengeSet

    if ChallengeSet._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated backwards past the quizzes tables
    load_challenge_sets(using=using)


class QuizzesConfig(AppConfig):
    name = "quizzes"
    verbose_name = "Challenges"

    def ready(self) -> None:
        from grading import challenges
        from grading.signals import submission_graded
        from lti_tool import targets
        from quizzes import content, queries, services

        # The layers below never import quizzes: grading is told what to run and who may see the result, lti_tool
        # where a launch lands.
        challenges.register(
            get=content.get_code_challenge, current=content.current_code_challenges, access=queries.submission_access
        )
        targets.register(resource_link="quizzes:launch", deep_link="quizzes:deep_link",
                         submission_review="quizzes:review")
        post_migrate.connect(load_content_after_migrate, sender=self, dispatch_uid="quizzes.load_content")
        submission_graded.connect(services.score_code_submission, dispatch_uid="quizzes.score_code_submission")
