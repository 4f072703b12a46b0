from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # /admin/
    path("admin/", admin.site.urls),
    # /accounts/login/, /accounts/logout/
    path("accounts/", include("django.contrib.auth.urls")),
    # MLflow REST protocol: /api/..., /v1/traces, /version, /health
    path("", include("annotation.api_urls")),
    # /traces/<id>/, /queues/, /schemas/, /export/, /overview/, ...
    path("", include("annotation.urls")),
    # /annotators/...
    path("", include("accounts.urls")),
    # /, /traces/...
    path("", include("traces.urls")),
]
