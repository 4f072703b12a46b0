from django.contrib import admin

from .models import Experiment, Span, Trace


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "lifecycle_stage", "creation_time"]
    search_fields = ["name"]


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ["trace_id", "experiment", "state", "user", "session", "span_count"]
    list_filter = ["state", "experiment"]
    search_fields = ["trace_id", "client_request_id", "user", "session"]
    list_select_related = ["experiment"]
    show_full_result_count = False
    # A trace's experiment is fixed here: its assessments keep a copy of it (traces.feedback).
    readonly_fields = ["experiment", "span_count", "span_bytes"]


@admin.register(Span)
class SpanAdmin(admin.ModelAdmin):
    list_display = ["span_id", "name", "span_type", "status", "trace"]
    list_filter = ["span_type", "status"]
    search_fields = ["span_id", "name", "trace__trace_id"]
    list_select_related = ["trace"]
    raw_id_fields = ["trace"]
    show_full_result_count = False
