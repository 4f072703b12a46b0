from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from accounts.forms import SignInForm

# MLflow's JSON error shape on API paths, Django's page elsewhere.
handler500 = "traces.rest.server_error"

urlpatterns = [
    # /admin/
    path("admin/", admin.site.urls),
    # /accounts/... Sign-in is limited per username and address. Tracemark sends no email:
    # a forgotten password is reset by a link an Admin makes on the person's page, opened
    # at reset/<uidb64>/<token>/ like an invitation.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=SignInForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password_reset/",
        TemplateView.as_view(template_name="registration/password_reset_form.html"),
        name="password_reset",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    # MLflow REST protocol: /api/..., /v1/traces, /version, /health
    path("", include("annotation.api_urls")),
    # /traces/<id>/, /queues/, /schemas/, /export/, /overview/, ...
    path("", include("annotation.urls")),
    # /annotators/...
    path("", include("accounts.urls")),
    # /, /traces/...
    path("", include("traces.urls")),
]
