"""Admin for IT: registrations (with deployments, approve/disable), tool keys, and what launches created."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from lti_tool import services
from lti_tool.models import Context, Deployment, FrameOrigin, LtiUser, Registration, ResourceLink, ToolKey


def _apply_to_each(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: Callable, done: str, level: int
) -> None:
    """An admin action: one service verb on each selected row (each its own transaction), then one message."""
    for obj in queryset:
        verb(obj)
    model_admin.message_user(request, f"{queryset.count()} {done}.", level)


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1
    # Ticking "active" on a pending deployment approves it (Deployment.save clears pending).
    fields = ("deployment_id", "is_active", "pending", "created_at")
    readonly_fields = ("pending", "created_at")


class FrameOriginInline(admin.TabularInline):
    """LMS origins learned from verified launches (lti_tool.frames): IT may delete one; it comes back only if a
    verified launch names it again."""

    model = FrameOrigin
    extra = 0
    fields = ("origin", "last_seen_at")
    readonly_fields = ("origin", "last_seen_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # LTI_FRAME_ANCESTORS_EXTRA is for origins set by hand


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """Deployments a launch brought that wait for IT (LTI_DEPLOYMENT_POLICY=approval) are listed as pending here."""

    list_display = ("deployment_id", "registration", "is_active", "pending", "created_at")
    list_filter = ("pending", "is_active", "registration")
    search_fields = ("deployment_id", "registration__name", "registration__issuer", "registration__client_id")
    fields = ("registration", "deployment_id", "is_active", "pending", "created_at")
    readonly_fields = ("registration", "deployment_id", "pending", "created_at")
    actions = ["activate", "disable"]

    def has_add_permission(self, request):
        return False  # deployments come from registrations and launches (or the registration's inline)

    @admin.action(description="Activate the selected deployments (launches accepted)")
    def activate(self, request, queryset):
        _apply_to_each(
            self, request, queryset, services.activate_deployment, "deployment(s) activated", messages.SUCCESS
        )

    @admin.action(description="Disable the selected deployments (launches refused)")
    def disable(self, request, queryset):
        _apply_to_each(self, request, queryset, services.disable_deployment, "deployment(s) disabled", messages.WARNING)


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "issuer", "client_id", "status", "product_family", "registered_by", "created_at")
    list_filter = ("status", "registered_by", "product_family")
    search_fields = ("name", "issuer", "client_id")
    readonly_fields = ("uuid", "registered_by", "scopes", "openid_configuration", "created_at", "updated_at")
    inlines = [DeploymentInline, FrameOriginInline]
    actions = ["approve", "disable"]

    @admin.action(description="Approve (activate) the selected registrations")
    def approve(self, request, queryset):
        _apply_to_each(
            self, request, queryset, services.approve_registration, "registration(s) approved", messages.SUCCESS
        )

    @admin.action(description="Disable the selected registrations (launches refused)")
    def disable(self, request, queryset):
        _apply_to_each(
            self, request, queryset, services.disable_registration, "registration(s) disabled", messages.WARNING
        )


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "state", "created_at", "activated_at", "retired_at")
    list_filter = ("state",)
    # The private key is never shown; keys are made by create_tool_key / rotate_tool_key.
    fields = ("kid", "state", "public_jwk", "created_at", "activated_at", "retired_at")
    readonly_fields = ("kid", "public_jwk", "created_at", "activated_at", "retired_at")

    def has_add_permission(self, request):
        return False


@admin.register(LtiUser)
class LtiUserAdmin(admin.ModelAdmin):
    list_display = ("display_name", "sub", "email", "registration", "updated_at")
    search_fields = ("sub", "name", "email", "given_name", "family_name")
    list_filter = ("registration",)
    raw_id_fields = ("user",)


@admin.register(Context)
class ContextAdmin(admin.ModelAdmin):
    list_display = ("__str__", "context_id", "label", "deployment", "updated_at")
    search_fields = ("context_id", "title", "label")


@admin.register(ResourceLink)
class ResourceLinkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "resource_link_id", "context", "lineitem_url", "updated_at")
    search_fields = ("resource_link_id", "title")
