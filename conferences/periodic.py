"""The service's periodic tasks in django-celery-beat's database scheduler.

Upserted after every migrate: a missing task is created; one that exists is left exactly as
staff tuned it in the admin.
"""

from datetime import timedelta

PERIODIC_TASKS = {
    # name: (task, every)
    "Playback watchdog": ("conferences.tasks.expire_due_playbacks", timedelta(seconds=1)),
    "Webhook delivery re-drive": ("conferences.tasks.redrive_deliveries", timedelta(seconds=2)),
    "Join timeouts": ("conferences.tasks.expire_due_joins", timedelta(seconds=1)),
    "Orphan sessions": ("conferences.tasks.expire_orphans", timedelta(seconds=10)),
    "Engine command re-drive": ("conferences.tasks.redrive_engine_commands", timedelta(seconds=2)),
    "Engine reconciliation": ("conferences.tasks.reconcile_engine", timedelta(seconds=30)),
    "History pruning": ("conferences.tasks.prune_history", timedelta(hours=1)),
}


def register_periodic_tasks(**kwargs) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, every) in PERIODIC_TASKS.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        seconds = int(every.total_seconds())
        schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": schedule})
