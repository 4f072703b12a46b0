from django.urls import path

from . import views

app_name = "traces"

urlpatterns = [
    # /
    path("", views.trace_list, name="list"),
    # /traces/<trace_id>/
    path("traces/<str:trace_id>/", views.trace_detail, name="detail"),
]
