from django.urls import path

from . import run_views, span_views, views

app_name = "traces"

urlpatterns = [
    # /
    path("", views.trace_list, name="list"),
    # /experiments/<id>/runs/, /runs/<run_id>/
    path("experiments/<int:experiment_id>/runs/", run_views.run_list, name="run-list"),
    path("runs/<str:run_id>/", run_views.run_detail, name="run-detail"),
    # /traces/<trace_id>/... (the page itself is annotation:trace-review)
    path(
        "traces/<str:trace_id>/spans/<str:span_id>/children/",
        span_views.span_children,
        name="span-children",
    ),
    path(
        "traces/<str:trace_id>/attachments/<str:attachment_id>/",
        views.attachment_download,
        name="attachment",
    ),
]
