from django.db import migrations

ROLES = ["Admin", "Reviewer", "Viewer"]


def create_roles_and_default_experiment(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    Experiment = apps.get_model("traces", "Experiment")
    # MLflow clients expect experiment "0" named "Default" to exist.
    Experiment.objects.get_or_create(id=0, defaults={"name": "Default"})


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_roles_and_default_experiment, remove_roles)]
