"""Each assessment names its trace's experiment, filled from the trace for existing rows.

The column becomes required in 0018: on PostgreSQL a table whose rows a transaction
updated cannot be altered in it while the new foreign key's checks are pending."""

import django.db.models.deletion
from django.db import migrations, models


def fill_experiments(apps, schema_editor):
    Assessment = apps.get_model("annotation", "Assessment")
    Trace = apps.get_model("traces", "Trace")
    experiment = Trace.objects.filter(pk=models.OuterRef("trace_id")).values("experiment_id")
    Assessment.objects.update(experiment_id=models.Subquery(experiment))


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0016_assessment_live_human_index"),
        ("traces", "0007_trace_attachments"),
    ]

    operations = [
        migrations.AddField(
            model_name="assessment",
            name="experiment",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="traces.experiment",
            ),
        ),
        migrations.RunPython(fill_experiments, migrations.RunPython.noop, elidable=True),
    ]
