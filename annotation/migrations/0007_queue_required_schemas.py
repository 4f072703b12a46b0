# A queue says which of its schemas must be answered; the schema-wide "required" flag goes.

from django.db import migrations, models


def carry_over_required(apps, schema_editor):
    """Each existing queue requires what it required before: its schemas flagged required."""
    Queue = apps.get_model("annotation", "Queue")
    for queue in Queue.objects.all():
        queue.required_schemas.set(queue.schemas.filter(required=True))


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0006_exact_json_numbers'),
    ]

    operations = [
        migrations.AddField(
            model_name='queue',
            name='required_schemas',
            field=models.ManyToManyField(blank=True, help_text='The schemas every annotator must answer before an item is done for them.', related_name='required_in_queues', to='annotation.labelschema'),
        ),
        migrations.RunPython(carry_over_required, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='labelschema',
            name='required',
        ),
    ]
