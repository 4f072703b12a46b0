"""The assessment's experiment is required, and indexed for live feedback."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0017_assessment_experiment")]

    operations = [
        migrations.AlterField(
            model_name="assessment",
            name="experiment",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="traces.experiment",
            ),
        ),
        migrations.AddIndex(
            model_name="assessment",
            index=models.Index(
                condition=models.Q(
                    ("deleted_at__isnull", True), ("kind", "feedback"), ("valid", True)
                ),
                fields=["experiment", "name"],
                name="assessment_live_feedback_idx",
            ),
        ),
    ]
