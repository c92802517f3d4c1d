from django.db import migrations, models


def create_wake_rows(apps, schema_editor):
    OutboxWake = apps.get_model("conferences", "OutboxWake")
    OutboxWake.objects.get_or_create(kind="webhooks")


class Migration(migrations.Migration):

    dependencies = [
        ("conferences", "0006_playback_operations"),
    ]

    operations = [
        migrations.CreateModel(
            name="OutboxWake",
            fields=[
                ("kind", models.CharField(max_length=20, primary_key=True, serialize=False)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RunPython(create_wake_rows, migrations.RunPython.noop),
    ]
