from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

from accounts.forms import SignInForm

# MLflow's JSON error shape on API paths, Django's page elsewhere.
handler500 = "traces.rest.server_error"

urlpatterns = [
    # /admin/
    path("admin/", admin.site.urls),
    # /accounts/login/ (limited per username and address), /accounts/logout/
    path("accounts/login/", LoginView.as_view(authentication_form=SignInForm), name="login"),
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
