from django.urls import path

from . import export_views, overview_views, views

app_name = "annotation"

urlpatterns = [
    # /traces/<trace_id>/ — the review page. config/urls.py includes this module before
    # traces.urls, so this route answers for traces:detail too.
    path("traces/<str:trace_id>/", views.trace_review, name="trace-review"),
    path(
        "traces/<str:trace_id>/assessments/",
        views.assessment_create,
        name="assessment-create",
    ),
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
    # /export/
    path("export/", export_views.export_page, name="export"),
    path("export/download/", export_views.export_download, name="export-download"),
    # /overview/
    path("overview/", overview_views.overview_index, name="overview-index"),
    path("overview/<int:experiment_id>/", overview_views.experiment_overview, name="overview"),
]
