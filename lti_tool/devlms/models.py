"""The development LMS's own data: a tiny LTI 1.3 platform (keys, tools, courses, people, links, gradebook).

Nothing here refers to the tool's models: the platform only knows the tool through the URLs it registered with
Dynamic Registration, exactly as Canvas or Moodle would.
"""

from __future__ import annotations

from django.db import models


class ActiveQuerySet(models.QuerySet):
    """For models with an `active` flag (keys the platform publishes, installed tools, current enrollments)."""

    def active(self) -> ActiveQuerySet:
        return self.filter(active=True)


class Style(models.TextChoices):
    """Which real LMS the platform mimics where Canvas and Moodle differ (AGS errors, deployment ids, URLs)."""

    CANVAS = "canvas", "Canvas-like"
    MOODLE = "moodle", "Moodle-like"


class PlatformKey(models.Model):
    """An RSA key pair the platform signs id_tokens with; active keys are published in its JWKS."""

    kid = models.CharField(max_length=64, unique=True)
    private_key_pem = models.TextField()
    public_jwk = models.JSONField()
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ActiveQuerySet.as_manager()


class RegistrationToken(models.Model):
    """A one-time bearer token handed to the tool's registration URL (Dynamic Registration)."""

    token = models.CharField(max_length=128, unique=True)
    style = models.CharField(max_length=16, choices=Style.choices, default=Style.CANVAS)
    # Scopes the "admin" grants (empty: everything the tool asked for that the platform supports).
    granted_scopes = models.TextField(blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)


class Tool(models.Model):
    """A tool registered with the platform (one client_id)."""

    client_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    style = models.CharField(max_length=16, choices=Style.choices, default=Style.CANVAS)
    # Canvas: empty until the admin installs the tool; Moodle: the tool type id, returned at registration.
    deployment_id = models.CharField(max_length=64, blank=True)
    # Moodle creates registered tools pending until an admin activates them.
    active = models.BooleanField(default=False)
    initiate_login_uri = models.URLField(max_length=500)
    redirect_uris = models.JSONField(default=list)
    target_link_uri = models.URLField(max_length=500)
    deep_link_uri = models.URLField(max_length=500, blank=True)
    jwks_uri = models.URLField(max_length=500)
    scopes = models.TextField(blank=True)
    # The platform issuer the tool registered with (the origin the LMS was reached at then).
    issuer = models.CharField(max_length=255, blank=True)
    claims = models.JSONField(default=list, blank=True)
    registration = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ActiveQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name or 'tool'} ({self.client_id})"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class Course(models.Model):
    """A course (LTI context)."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    label = models.CharField(max_length=64)
    # Blank: follow the style of the tool (the platform mimics the LMS the tool registered as).
    style = models.CharField(max_length=16, choices=Style.choices, blank=True)
    concluded = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.title


class Person(models.Model):
    """A platform user. `sub` is what the tool sees."""

    username = models.SlugField(max_length=64, unique=True)
    sub = models.CharField(max_length=64, unique=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    email = models.EmailField()
    is_instructor = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Enrollment(models.Model):
    """A person's role in a course."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="enrollments")
    is_instructor = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "person"], name="devlms_uniq_enrollment")]


class LineItem(models.Model):
    """A gradebook column."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="line_items")
    resource_link = models.ForeignKey(
        "ResourceLink", on_delete=models.SET_NULL, null=True, blank=True, related_name="line_items"
    )
    tool = models.ForeignKey(Tool, on_delete=models.SET_NULL, null=True, blank=True)
    label = models.CharField(max_length=200)
    score_maximum = models.FloatField()
    resource_id = models.CharField(max_length=200, blank=True)
    tag = models.CharField(max_length=200, blank=True)
    # Canvas: a "pass_fail" assignment shows complete/incomplete (any score > 0 passes); "points" shows the score.
    grading_type = models.CharField(
        max_length=16, choices=[("points", "Points"), ("pass_fail", "Complete/incomplete")], default="points"
    )
    start_date_time = models.CharField(max_length=64, blank=True)
    end_date_time = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label


class ResourceLink(models.Model):
    """A placement of the tool in a course. `slug` names it in the UI and tests; `link_id` is sent to the tool."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="resource_links")
    slug = models.SlugField(max_length=64)
    link_id = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    custom = models.JSONField(default=dict, blank=True)
    # The coupled gradebook column (Canvas assignment / Moodle grade item), if any.
    line_item = models.ForeignKey(LineItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="devlms_uniq_link")]

    def __str__(self) -> str:
        return self.title


class Score(models.Model):
    """The current result of one person in one column: the gradebook cell (Canvas: the submission's grade) and the
    tool's AGS result (`result_score`, `timestamp`, which Canvas keeps as the result's updated_at)."""

    line_item = models.ForeignKey(LineItem, on_delete=models.CASCADE, related_name="scores")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="scores")
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    activity_progress = models.CharField(max_length=32)
    grading_progress = models.CharField(max_length=32)
    comment = models.TextField(blank=True)
    timestamp = models.DateTimeField()
    # Canvas: the AGS result's score as the tool sent it (scoreGiven, not rescaled); a teacher's edit overwrites it.
    result_score = models.FloatField(null=True, blank=True)
    # Canvas pass/fail columns: "complete" or "incomplete".
    grade = models.CharField(max_length=16, blank=True)
    # Who set the grade last: "tool" (an AGS score) or "teacher" (by hand in the gradebook).
    grader = models.CharField(max_length=16, blank=True)
    # Canvas submissions: how many the student has made (one per new_submission score) and when the last one was.
    attempt = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["line_item", "person"], name="devlms_uniq_score")]


class ScoreEvent(models.Model):
    """Every score POST the platform received, accepted or refused (the raw AGS history)."""

    line_item = models.ForeignKey(LineItem, on_delete=models.CASCADE, related_name="events")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    status_code = models.PositiveSmallIntegerField()
    detail = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]


class AccessToken(models.Model):
    """A bearer token issued by the token endpoint."""

    token = models.CharField(max_length=128, unique=True)
    tool = models.ForeignKey(Tool, on_delete=models.CASCADE)
    scopes = models.TextField()
    expires_at = models.DateTimeField()


class UsedJti(models.Model):
    """Client-assertion ids already used (a replayed assertion is refused)."""

    jti = models.CharField(max_length=255, unique=True)
    expires_at = models.DateTimeField()


class Fault(models.Model):
    """Fault injection for the service endpoints (token, AGS, NRPS). At most one row (pk=1)."""

    class Mode(models.TextChoices):
        DOWN = "down", "Down (503 for everything)"
        ERROR_5XX = "5xx", "Server errors (502)"
        RATE_LIMIT = "429", "Rate limited (429 with Retry-After)"
        SLOW = "slow", "Slow (sleeps before answering)"

    mode = models.CharField(max_length=8, choices=Mode.choices)
    # Requests still to be affected; null: until cleared.
    remaining = models.PositiveIntegerField(null=True, blank=True)
    # Sleep for "slow", Retry-After for "429".
    seconds = models.FloatField(default=1.0)
    # How many requests the fault has answered so far.
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now=True)
