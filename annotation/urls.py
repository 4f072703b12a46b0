from django.urls import path

from . import (
    dataset_views,
    export_views,
    judge_views,
    overview_views,
    quality_views,
    queue_views,
    schema_views,
    session_item_views,
    session_views,
    views,
)

app_name = "annotation"

urlpatterns = [
    # /traces/<trace_id>/ — the review page, every trace's page (Trace.get_absolute_url).
    # Its span-children partial lives in traces.urls.
    path("traces/<str:trace_id>/", views.trace_review, name="trace-review"),
    path(
        "traces/<str:trace_id>/assessments/",
        views.assessment_create,
        name="assessment-create",
    ),
    # /sessions/<session_id>/ (session ids are free text, slashes included)
    path("sessions/<path:session_id>/", session_views.session_detail, name="session"),
    # /assessments/<assessment_id>/...
    path("assessments/<str:assessment_id>/edit/", views.assessment_edit, name="assessment-edit"),
    path(
        "assessments/<str:assessment_id>/override/",
        views.assessment_override,
        name="assessment-override",
    ),
    path(
        "assessments/<str:assessment_id>/delete/",
        views.assessment_delete,
        name="assessment-delete",
    ),
    path(
        "assessments/<str:assessment_id>/restore/",
        views.assessment_restore,
        name="assessment-restore",
    ),
    path(
        "assessments/<str:assessment_id>/history/",
        views.assessment_history,
        name="assessment-history",
    ),
    # /queues/...
    path("queues/", queue_views.queue_list, name="queue-list"),
    path("queues/new/", queue_views.queue_create, name="queue-create"),
    path("queues/<int:queue_id>/", queue_views.queue_detail, name="queue-detail"),
    path("queues/<int:queue_id>/next/", queue_views.queue_next, name="queue-next"),
    path("queues/<int:queue_id>/status/", queue_views.queue_status, name="queue-status"),
    path(
        "queues/<int:queue_id>/disagreements/",
        queue_views.queue_disagreements,
        name="queue-disagreements",
    ),
    path(
        "queues/<int:queue_id>/sessions/",
        session_item_views.queue_add_sessions,
        name="queue-add-sessions",
    ),
    path("queues/<int:queue_id>/items/<int:position>/", queue_views.queue_item, name="queue-item"),
    path(
        "queues/<int:queue_id>/items/<int:position>/skip/",
        queue_views.queue_skip,
        name="queue-skip",
    ),
    path(
        "queues/<int:queue_id>/items/<int:position>/activity/",
        quality_views.item_activity,
        name="queue-item-activity",
    ),
    path(
        "queues/<int:queue_id>/items/<int:position>/control/",
        quality_views.control_item,
        name="queue-control-item",
    ),
    path(
        "queues/<int:queue_id>/assignments.csv",
        quality_views.assignments_download,
        name="queue-assignments",
    ),
    path(
        "queues/<int:queue_id>/items/<int:position>/reopen/",
        queue_views.queue_item_reopen,
        name="queue-item-reopen",
    ),
    path(
        "queues/<int:queue_id>/items/<int:position>/adjudicate/<int:schema_id>/",
        queue_views.queue_adjudicate,
        name="queue-adjudicate",
    ),
    path(
        "queues/<int:queue_id>/assignments/<int:assignment_id>/reassign/",
        queue_views.queue_reassign,
        name="queue-reassign",
    ),
    # /datasets/...
    path("datasets/", dataset_views.dataset_list, name="dataset-list"),
    path("datasets/add/", dataset_views.dataset_add, name="dataset-add"),
    path("datasets/<str:dataset_id>/", dataset_views.dataset_detail, name="dataset-detail"),
    path("datasets/<str:dataset_id>/export/", dataset_views.dataset_export, name="dataset-export"),
    # /schemas/...
    path("schemas/", schema_views.schema_list, name="schema-list"),
    path("schemas/new/", schema_views.schema_create, name="schema-create"),
    path("schemas/<int:schema_id>/", schema_views.schema_edit, name="schema-edit"),
    # /export/
    path("export/", export_views.export_page, name="export"),
    path("export/download/", export_views.export_download, name="export-download"),
    # /experiments/<experiment_id>/judges/
    path("experiments/<int:experiment_id>/judges/", judge_views.judge_list, name="judges"),
    path(
        "experiments/<int:experiment_id>/judges/judge/",
        judge_views.judge_detail,
        name="judge-detail",
    ),
    path(
        "experiments/<int:experiment_id>/judges/queue/",
        judge_views.judge_queue,
        name="judge-queue",
    ),
    path(
        "experiments/<int:experiment_id>/judges/dataset/",
        judge_views.judge_dataset,
        name="judge-dataset",
    ),
    path(
        "experiments/<int:experiment_id>/judges/pairs/",
        judge_views.judge_pairs,
        name="judge-pairs",
    ),
    # /overview/
    path("overview/", overview_views.overview_index, name="overview-index"),
    path("overview/<int:experiment_id>/", overview_views.experiment_overview, name="overview"),
]
