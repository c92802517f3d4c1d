import conferences.models.webhooks
from django.db import migrations, models

QUEUE_POSITION_SEQUENCE = "conferences_delivery_queue_position_seq"


class Migration(migrations.Migration):

    dependencies = [
        ('conferences', '0009_engine_command_outbox'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='delivery',
            name='delivery_pending_queue',
        ),
        # Added without a default (no table rewrite), filled with the ids (existing deliveries
        # keep their order), then defaulted from a sequence that starts after them.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='delivery',
                    name='queue_position',
                    field=models.BigIntegerField(db_default=conferences.models.webhooks.NextQueuePosition()),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"""
                    CREATE SEQUENCE {QUEUE_POSITION_SEQUENCE};
                    ALTER TABLE conferences_delivery ADD COLUMN queue_position bigint NULL;
                    UPDATE conferences_delivery SET queue_position = id;
                    SELECT setval('{QUEUE_POSITION_SEQUENCE}', GREATEST((SELECT max(id) FROM conferences_delivery), 1));
                    ALTER TABLE conferences_delivery
                        ALTER COLUMN queue_position SET DEFAULT nextval('{QUEUE_POSITION_SEQUENCE}'),
                        ALTER COLUMN queue_position SET NOT NULL;
                    ALTER SEQUENCE {QUEUE_POSITION_SEQUENCE} OWNED BY conferences_delivery.queue_position;
                    """,
                    "ALTER TABLE conferences_delivery DROP COLUMN queue_position;",
                ),
            ],
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['endpoint', 'ordering_key', 'queue_position'], name='delivery_pending_queue'),
        ),
    ]
