"""LTI entities, named after the LTI vocabulary.

Everything is keyed by (issuer, client_id[, deployment_id]): Canvas cloud shares one issuer across all
institutions, so an issuer alone identifies nothing.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RegistrationQuerySet(models.QuerySet):
    def active(self) -> RegistrationQuerySet:
        """Registrations IT allows to launch and be framed (neither pending nor disabled)."""
        return self.filter(status=Registration.Status.ACTIVE)


class DeploymentQuerySet(models.QuerySet):
    def active(self) -> DeploymentQuerySet:
        """Deployments that may launch (not pending IT, not disabled)."""
        return self.filter(is_active=True)


class ToolKeyQuerySet(models.QuerySet):
    def active(self) -> ToolKeyQuerySet:
        """The key(s) signing now (one, except for a moment during rotation)."""
        return self.filter(state=ToolKey.State.ACTIVE)


class ToolKey(models.Model):
    """An RSA key pair the tool signs with (deep-linking responses, service-token assertions).

    Rotation publishes a new key in the JWKS first (state `published`) and only signs with it once platforms that
    cache our JWKS have had time to see it (state `active`). A retired key stays in the JWKS for a grace period
    (lti_tool.keys.RETIRED_KEY_GRACE) so tokens signed just before the switch still verify, then leaves it.
    """

    class State(models.TextChoices):
        PUBLISHED = "published", "Published (in JWKS, not yet signing)"
        ACTIVE = "active", "Active (signing)"
        RETIRED = "retired", "Retired"

    kid = models.CharField(max_length=64, unique=True)
    private_key_pem = models.TextField()
    public_jwk = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHED)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = ToolKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.kid} ({self.state})"


class Registration(models.Model):
    """A platform (LMS) registration: one (issuer, client_id) pair."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending IT approval"
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    issuer = models.CharField(max_length=255)
    client_id = models.CharField(max_length=255)
    auth_login_url = models.URLField(max_length=500)
    auth_token_url = models.URLField(max_length=500)
    auth_audience = models.CharField(max_length=500, blank=True)
    key_set_url = models.URLField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The platform's product family (canvas, moodle, ...) from its OpenID configuration, when known.
    product_family = models.CharField(max_length=64, blank=True)
    # Scopes the platform granted (Dynamic Registration), space separated.
    scopes = models.TextField(blank=True)
    openid_configuration = models.JSONField(default=dict, blank=True)
    registered_by = models.CharField(
        max_length=16, choices=[("manual", "Manual"), ("dynamic", "Dynamic Registration")], default="manual"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RegistrationQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="uniq_registration")]

    def __str__(self) -> str:
        return self.name or f"{self.issuer} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class FrameOrigin(models.Model):
    """An LMS origin (scheme://host[:port]) learned from a verified launch's signed return URL: allowed to frame the
    tool (CSP frame-ancestors) while its registration is active. See lti_tool.frames."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="frame_origins")
    origin = models.CharField(max_length=255)
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registration", "origin"], name="uniq_frame_origin")]

    def __str__(self) -> str:
        return self.origin


class Deployment(models.Model):
    """A deployment of the tool inside a platform (an account, a course, a Moodle tool type)."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)
    is_active = models.BooleanField(default=True)
    # First seen in a launch and held for IT (LTI_DEPLOYMENT_POLICY=approval): inactive until IT activates it.
    pending = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "deployment_id"], name="uniq_deployment")
        ]

    def __str__(self) -> str:
        return f"{self.registration} / {self.deployment_id}"

    def save(self, *args, **kwargs) -> None:
        if self.is_active and self.pending:
            # IT ticking "active" (admin inline or action) is the approval.
            self.pending = False
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "pending"}
        super().save(*args, **kwargs)


class Context(models.Model):
    """A course (LTI context) seen through one deployment, with its service endpoints."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True)
    label = models.CharField(max_length=255, blank=True)
    # AGS endpoint claim (https://purl.imsglobal.org/spec/lti-ags/claim/endpoint): lineitems URL and scopes.
    lineitems_url = models.URLField(max_length=1000, blank=True)
    ags_scopes = models.JSONField(default=list, blank=True)
    # NRPS claim (https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice).
    memberships_url = models.URLField(max_length=1000, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "context_id"], name="uniq_context")]

    def __str__(self) -> str:
        return self.title or self.context_id


class ResourceLink(models.Model):
    """A link to the tool placed in a course (an assignment, a module item)."""

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="resource_links")
    resource_link_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True)
    # The launch's `lineitem` claim, when the platform coupled a gradebook column to this link.
    lineitem_url = models.URLField(max_length=1000, blank=True)
    # False when the platform keeps grades only for links it coupled a column to and gave this one none (a Canvas
    # course-navigation launch: Canvas answers 404 to creating a line item for a link that is not an assignment).
    can_be_graded = models.BooleanField(default=True)
    custom = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "resource_link_id"], name="uniq_resource_link")]

    def __str__(self) -> str:
        return self.title or self.resource_link_id


class LtiUser(models.Model):
    """A person as one platform knows them: one per (registration, sub)."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="users")
    sub = models.CharField(max_length=255)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=255, blank=True)
    family_name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registration", "sub"], name="uniq_lti_user")]

    def __str__(self) -> str:
        return self.name or self.email or self.sub

    @property
    def display_name(self) -> str:
        return self.name or " ".join(p for p in (self.given_name, self.family_name) if p) or self.email or self.sub


class Membership(models.Model):
    """A user's roles in a context: Instructor/TeachingAssistant/Administrator are staff, Learner is student."""

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="memberships")
    lti_user = models.ForeignKey(LtiUser, on_delete=models.CASCADE, related_name="memberships")
    roles = models.JSONField(default=list, blank=True)
    is_staff = models.BooleanField(default=False)
    is_learner = models.BooleanField(default=False)
    # True when the row came from an NRPS roster sync (the user may not have launched yet).
    from_roster = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "lti_user"], name="uniq_membership")]


class UsedNonce(models.Model):
    """id_token nonces already used: a replayed id_token is refused even with a fresh state."""

    issuer = models.CharField(max_length=255)
    nonce = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "nonce"], name="uniq_used_nonce")]
