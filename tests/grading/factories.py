"""Factories for the grading app."""

import factory

from grading.models import CodeSubmission


class CodeSubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CodeSubmission

    challenge_slug = "resnet-block-stride"
    challenge_version = "test-version"
    code = "import torch.nn as nn\n"
