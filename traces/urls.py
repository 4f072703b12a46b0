from django.urls import path

from . import span_views, views

app_name = "traces"

urlpatterns = [
    # /
    path("", views.trace_list, name="list"),
    # /traces/<trace_id>/... (the page itself is annotation:trace-review)
    path(
        "traces/<str:trace_id>/spans/<str:span_id>/children/",
        span_views.span_children,
        name="span-children",
    ),
]
