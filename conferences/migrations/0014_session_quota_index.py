from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # built without locking writers out of sessions

    dependencies = [
        ('conferences', '0013_support_group'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='callsession',
            index=models.Index(condition=models.Q(('state', 'active')), fields=['app'], name='session_active_by_app'),
        ),
    ]
