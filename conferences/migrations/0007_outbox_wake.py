from django.db import migrations, models


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
    ]
