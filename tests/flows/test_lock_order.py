"""Pairs of operations on one room or session, run at the same time on separate connections:
none may deadlock (PostgreSQL would abort one with "deadlock detected", a 500)."""

import threading

import pytest
from django.db import connection

from conferences.actors import Actor
from conferences.services import members, playback
from conferences.services.commands import run_command
from conferences.services.rooms import create_room, destroy_room
from conferences.services.sessions import create_session

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM = Actor.system("tests")


def run_together(*calls):
    """Run the calls at once, one thread and connection each; the errors they raised. A thread
    still running after 30 s fails the test: that is what a deadlock looks like here."""
    barrier = threading.Barrier(len(calls))
    errors = []

    def run(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # collected: a deadlock would show here
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a call did not finish within 30 s"
    return errors


def joining_member(tenant, room):
    """A new session whose join the engine has not confirmed yet."""
    session = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    run_command(
        actor=SYSTEM,
        app=tenant.app,
        session_uuid=session.session_uuid,
        command="conference/join",
        command_uid=None,
        request={},
        perform=lambda uid: members.join(
            actor=SYSTEM,
            app=tenant.app,
            session_uuid=session.session_uuid,
            room_id=room.room_id,
            muted=False,
            command_uid=uid,
        ),
    )
    return session


def joined_member(tenant, room):
    session = joining_member(tenant, room)
    members.confirm_join(actor=SYSTEM, session_uuid=session.session_uuid, room_id=room.room_id)
    return session


@pytest.mark.parametrize("round_number", range(5))
def test_hang_up_and_room_deletion(tenant, round_number):
    room = create_room(actor=SYSTEM, app=tenant.app, name=f"r{round_number}")
    sessions = [joined_member(tenant, room) for _ in range(3)]
    errors = run_together(
        *(
            lambda s=s: members.end_session(actor=SYSTEM, session_uuid=s.session_uuid, reason="hangup")
            for s in sessions
        ),
        lambda: destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id),
    )
    assert errors == []


@pytest.mark.parametrize("round_number", range(5))
def test_mute_and_kick(tenant, round_number):
    room = create_room(actor=SYSTEM, app=tenant.app, name=f"m{round_number}")
    session = joined_member(tenant, room)

    def mute():
        try:
            run_command(
                actor=SYSTEM,
                app=tenant.app,
                session_uuid=session.session_uuid,
                command="conference/mute",
                command_uid=None,
                request={},
                perform=lambda uid: members.set_muted(
                    actor=SYSTEM, app=tenant.app, session_uuid=session.session_uuid, muted=True, command_uid=uid
                ),
            )
        except members.Conflict:
            pass  # kicked first: not in a conference

    errors = run_together(
        mute,
        lambda: members.kick(actor=SYSTEM, app=tenant.app, room_id=room.room_id, session_uuid=session.session_uuid),
    )
    assert errors == []


@pytest.mark.parametrize("round_number", range(5))
def test_watchdog_and_join_confirmation_in_one_room(tenant, round_number):
    from datetime import timedelta

    from django.utils import timezone

    from conferences.models import PlaybackOperation

    room = create_room(actor=SYSTEM, app=tenant.app, name=f"w{round_number}")
    session = joining_member(tenant, room)
    playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=["https://x/a.wav"])
    PlaybackOperation.objects.update(deadline_at=timezone.now() - timedelta(seconds=1))
    errors = run_together(
        lambda: playback.expire_due(actor=SYSTEM),
        lambda: members.confirm_join(actor=SYSTEM, session_uuid=session.session_uuid, room_id=room.room_id),
    )
    assert errors == []
