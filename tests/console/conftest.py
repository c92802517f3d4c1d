import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

SUPPORT_GROUP = importlib.import_module("conferences.migrations.0013_support_group")


def support_group() -> Group:
    """The group the migration made; a transactional test's flush empties the tables, so it is
    made again the same way when missing."""
    if not Group.objects.filter(name="support").exists():
        SUPPORT_GROUP.create_support_group(apps, None)
    return Group.objects.get(name="support")


@pytest.fixture
def support_user(db):
    user = get_user_model().objects.create_user("sam-support", password="support-pw-1", is_staff=True)
    user.groups.add(support_group())
    return user


@pytest.fixture
def support(client, support_user):
    client.force_login(support_user)
    return client


@pytest.fixture
def superuser_client(db):
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root-admin", password="root-pw-1"))
    return client
