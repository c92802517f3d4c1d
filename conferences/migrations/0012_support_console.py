from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models.fields.json import KeyTextTransform


class Migration(migrations.Migration):
    # The indexes are built without locking writers out of history and events.
    atomic = False

    dependencies = [
        ('conferences', '0011_endpoint_self_service'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='callsession',
            options={'permissions': [('hang_up_session', 'Can hang up a session')], 'verbose_name': 'session'},
        ),
        migrations.AlterModelOptions(
            name='delivery',
            options={'permissions': [('redeliver_delivery', 'Can redeliver a delivery')], 'verbose_name_plural': 'deliveries'},
        ),
        migrations.AlterModelOptions(
            name='member',
            options={'permissions': [('kick_member', 'Can kick a member'), ('mute_member', 'Can mute or unmute a member')]},
        ),
        migrations.AlterModelOptions(
            name='room',
            options={'permissions': [('destroy_room', 'Can destroy a room'), ('stop_playback', "Can stop a room's playback")]},
        ),
        migrations.AlterModelOptions(
            name='webhookendpoint',
            options={'permissions': [('disable_endpoint', 'Can disable or enable an endpoint'), ('recover_endpoint', "Can queue an endpoint's failed deliveries again")], 'verbose_name': 'webhook endpoint'},
        ),
        AddIndexConcurrently(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('operation_id', ''), _negated=True), fields=['operation_id'], name='audit_by_operation'),
        ),
        AddIndexConcurrently(
            model_name='auditentry',
            index=models.Index(fields=['action', 'id'], name='audit_by_action'),
        ),
        AddIndexConcurrently(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('outcome', 'ok'), _negated=True), fields=['outcome', 'id'], name='audit_not_ok_by_outcome'),
        ),
        AddIndexConcurrently(
            model_name='event',
            index=models.Index(condition=models.Q(('room__isnull', True)), fields=['ordering_key', 'id'], name='event_by_session'),
        ),
        AddIndexConcurrently(
            model_name='event',
            index=models.Index(KeyTextTransform('session_uuid', 'payload'), models.F('id'), condition=models.Q(('event_type__startswith', 'conference.member.')), name='event_member_by_session'),
        ),
    ]
