from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    # /annotators/...
    path("annotators/", views.annotator_list, name="annotator-list"),
    path("annotators/<int:person_id>/", views.annotator_detail, name="annotator-detail"),
    path("annotators/<int:person_id>/role/", views.annotator_role, name="annotator-role"),
    path("annotators/<int:person_id>/access/", views.annotator_active, name="annotator-active"),
    path(
        "annotators/<int:person_id>/password-link/",
        views.annotator_password_link,
        name="annotator-password-link",
    ),
    path("annotators/<int:person_id>/tokens/", views.token_create, name="token-create"),
    path(
        "annotators/<int:person_id>/tokens/<int:token_id>/revoke/",
        views.token_revoke,
        name="token-revoke",
    ),
]
