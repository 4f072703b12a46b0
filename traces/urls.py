from django.urls import path

from . import span_views, views

app_name = "traces"

urlpatterns = [
    # /
    path("", views.trace_list, name="list"),
    # /traces/<trace_id>/
    path("traces/<str:trace_id>/", views.trace_detail, name="detail"),
    path(
        "traces/<str:trace_id>/spans/<str:span_id>/children/",
        span_views.span_children,
        name="span-children",
    ),
]
