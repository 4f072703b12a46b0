"""Admin screens. Assessments and their revisions are read-only here: writes go through
annotation.services so that every change leaves a revision."""

from django.contrib import admin

from .models import (
    Assessment,
    AssessmentRevision,
    LabelSchema,
    Queue,
    QueueAssignment,
    QueueItem,
)
from .schema_cache import schemas_changed


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RevisionInline(admin.TabularInline):
    model = AssessmentRevision
    fields = ["version", "action", "actor_label", "created_at", "snapshot"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Assessment)
class AssessmentAdmin(ReadOnlyAdmin):
    list_display = ["assessment_id", "name", "kind", "source_type", "valid", "version", "trace"]
    list_filter = ["kind", "source_type", "valid"]
    search_fields = ["assessment_id", "name", "trace__trace_id", "source_id"]
    list_select_related = ["trace"]
    inlines = [RevisionInline]
    show_full_result_count = False


@admin.register(AssessmentRevision)
class AssessmentRevisionAdmin(ReadOnlyAdmin):
    list_display = ["assessment", "version", "action", "actor_label", "created_at"]
    list_filter = ["action"]
    search_fields = ["assessment__assessment_id", "actor_label"]
    list_select_related = ["assessment"]
    show_full_result_count = False


@admin.register(LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "kind", "value_type", "applies_to"]
    list_filter = ["value_type", "applies_to"]
    search_fields = ["name", "title"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        schemas_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        schemas_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        schemas_changed()


class QueueItemInline(admin.TabularInline):
    model = QueueItem
    raw_id_fields = ["trace"]
    extra = 0


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "overlap", "blind", "created_at"]
    filter_horizontal = ["schemas", "annotators"]
    inlines = [QueueItemInline]


@admin.register(QueueAssignment)
class QueueAssignmentAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "status", "assigned_at", "completed_at"]
    list_filter = ["status"]
    list_select_related = ["item", "annotator"]
