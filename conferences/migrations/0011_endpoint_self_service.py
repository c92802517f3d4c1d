import uuid

from django.db import migrations, models

import conferences.models.webhooks


def mint_endpoint_ids(apps, schema_editor):
    WebhookEndpoint = apps.get_model("conferences", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.filter(endpoint_id__isnull=True).only("pk"):
        endpoint.endpoint_id = f"ep_{uuid.uuid4().hex}"
        endpoint.save(update_fields=["endpoint_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("conferences", "0010_delivery_queue_position"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="endpoint_id",
            field=models.CharField(max_length=35, null=True, editable=False),
        ),
        migrations.RunPython(mint_endpoint_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="endpoint_id",
            field=models.CharField(
                default=conferences.models.webhooks.mint_endpoint_id, editable=False, max_length=35, unique=True
            ),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="description",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="deleted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="webhookendpoint",
            constraint=models.CheckConstraint(
                condition=models.Q(("deleted_at__isnull", True), ("enabled", False), _connector="OR"),
                name="endpoint_deleted_is_disabled",
            ),
        ),
        migrations.AddIndex(
            model_name="webhookendpoint",
            index=models.Index(
                condition=models.Q(("deleted_at__isnull", True)), fields=["app", "-id"], name="endpoint_current_by_app"
            ),
        ),
    ]
