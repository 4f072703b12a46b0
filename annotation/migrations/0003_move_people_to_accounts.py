# ApiToken and AuthFailure now belong to the accounts app. Only Django's picture of the
# models moves; the tables stay where they are (accounts' models name them in db_table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0002_auth_failures"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="AuthFailure"),
            ],
        ),
    ]
