# ApiToken and AuthFailure, taken over from the annotation app with their tables
# (annotation_apitoken, annotation_authfailure), which annotation's first migrations made.
# Only Django's state changes here, and the content types follow the models so admin
# history and permissions stay attached.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ["apitoken", "authfailure"]


def relabel_content_types(apps, schema_editor, old="annotation", new="accounts"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def restore_content_types(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="accounts", new="annotation")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("annotation", "0003_move_people_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(default="default", max_length=100)),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("prefix", models.CharField(help_text="First characters, to recognise a token.", max_length=12)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "annotation_apitoken", "ordering": ["-created_at"]},
                ),
                migrations.CreateModel(
                    name="AuthFailure",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("address", models.CharField(blank=True, max_length=64)),
                        ("failed_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "annotation_authfailure",
                        "indexes": [models.Index(fields=["address", "failed_at"], name="auth_failure_address_idx")],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types, restore_content_types),
    ]
