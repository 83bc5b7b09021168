"""Factories for the LTI entities. Per-app factories may live beside them (tests/<app>/factories.py)."""

import factory

from lti_tool import models


class RegistrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Registration

    name = "Test LMS"
    issuer = factory.Sequence(lambda n: f"https://lms{n}.example.edu")
    client_id = factory.Sequence(lambda n: f"client-{n}")
    auth_login_url = factory.LazyAttribute(lambda o: f"{o.issuer}/auth")
    auth_token_url = factory.LazyAttribute(lambda o: f"{o.issuer}/token")
    key_set_url = factory.LazyAttribute(lambda o: f"{o.issuer}/jwks")


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Deployment

    registration = factory.SubFactory(RegistrationFactory)
    deployment_id = factory.Sequence(lambda n: f"deployment-{n}")


class ContextFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Context

    deployment = factory.SubFactory(DeploymentFactory)
    context_id = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Deep Learning {n}")


class ResourceLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ResourceLink

    context = factory.SubFactory(ContextFactory)
    resource_link_id = factory.Sequence(lambda n: f"link-{n}")
    title = "ResNet challenges"


class LtiUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LtiUser

    registration = factory.SubFactory(RegistrationFactory)
    sub = factory.Sequence(lambda n: f"user-{n}")
    name = factory.Sequence(lambda n: f"Student {n}")
    email = factory.Sequence(lambda n: f"student{n}@example.edu")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    context = factory.SubFactory(ContextFactory)
    lti_user = factory.SubFactory(LtiUserFactory)
    roles = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
    is_learner = True
