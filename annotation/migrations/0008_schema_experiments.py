# Schemas apply to chosen experiments; existing schemas choose none, which means every one.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0007_queue_required_schemas'),
        ('traces', '0003_search_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='labelschema',
            name='experiments',
            field=models.ManyToManyField(blank=True, help_text='Experiments whose traces it applies to; none means every experiment.', related_name='label_schemas', to='traces.experiment'),
        ),
    ]
