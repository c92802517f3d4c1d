"""The `support` group (SPEC 10): view everything, run the console's actions, and tune a
periodic task's schedule (the admin keeps what a task runs read-only for it). Apps, API keys
and endpoint secrets stay with superusers."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = "support"
VIEWED_APPS = ("conferences", "django_celery_beat")
ACTIONS = [
    ("conferences", "destroy_room"), ("conferences", "stop_playback"), ("conferences", "hang_up_session"),
    ("conferences", "kick_member"), ("conferences", "mute_member"), ("conferences", "redeliver_delivery"),
    ("conferences", "disable_endpoint"), ("conferences", "recover_endpoint"),
    ("django_celery_beat", "change_periodictask"),
]


def create_support_group(apps, schema_editor):
    # Permissions are made after migrate; this group needs them now. (create_permissions skips an
    # app without a models module, which historical app configs lack.)
    for app_config in apps.get_app_configs():
        models_module, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=SUPPORT)
    viewing = Permission.objects.filter(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_")
    acting = [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in ACTIONS]
    group.permissions.add(*viewing, *acting)


def remove_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=SUPPORT).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conferences", "0012_support_console"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
