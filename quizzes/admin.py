"""Read-mostly admin for IT: content versions, placements, attempts and accommodations."""

from django.contrib import admin

from quizzes.models import Accommodation, Attempt, ChallengeSet, Placement, PlacementDraft


@admin.register(ChallengeSet)
class ChallengeSetAdmin(admin.ModelAdmin):
    list_display = ("slug", "version", "title", "is_current", "loaded_at")
    list_filter = ("slug", "is_current")
    readonly_fields = ("slug", "version", "title", "content", "is_current", "loaded_at")


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("title", "mode_slug", "points", "resource_link", "challenge_set", "created_at")
    list_filter = ("mode_slug",)
    readonly_fields = ("resource_link", "draft", "challenge_set", "rules", "created_at", "updated_at")


@admin.register(PlacementDraft)
class PlacementDraftAdmin(admin.ModelAdmin):
    list_display = ("title", "uuid", "mode_slug", "registration", "created_at")
    readonly_fields = ("uuid", "registration", "context", "created_by", "challenge_set", "rules", "created_at")


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("lti_user", "placement", "number", "started_at", "finished_at", "finish_reason", "score", "badge")
    list_filter = ("finish_reason",)
    readonly_fields = [f.name for f in Attempt._meta.fields]


@admin.register(Accommodation)
class AccommodationAdmin(admin.ModelAdmin):
    list_display = ("lti_user", "placement", "time_multiplier", "extra_attempts", "updated_at")
