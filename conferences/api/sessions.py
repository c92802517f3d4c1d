from functools import partial

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import selectors
from ..fields import StrictBooleanField, StrictCharField
from ..ids import COMMAND_UID_RE
from ..services import members
from ..services.commands import run_command
from .auth import actor_of


class CommandInput(serializers.Serializer):
    command_uid = StrictCharField(
        required=False,
        max_length=128,
        pattern=COMMAND_UID_RE.pattern,
        pattern_message="Must be 1 to 128 of [A-Za-z0-9._-].",
    )


class JoinInput(CommandInput):
    room_id = StrictCharField(max_length=64)
    muted = StrictBooleanField(required=False, default=False)


class AcceptedOutput(serializers.Serializer):
    operation_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["in_progress"])
    timeout_ms = serializers.IntegerField()


class SessionOutput(serializers.Serializer):
    session_uuid = serializers.CharField()
    caller_id = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "ended"])
    room_id = serializers.CharField(allow_null=True)
    muted = serializers.BooleanField()


COMMAND_NOTE = (
    " The outcome also arrives as a `command.result` event; a repeated `command_uid` within 24 h "
    "returns the first response and runs nothing."
)


def _command_schema(command: str, request, description: str):
    return extend_schema(
        operation_id=f"sessions_conference_{command}",
        request=request,
        responses={202: AcceptedOutput},
        description=description + COMMAND_NOTE,
    )


# Sessions of the calling app and the four conference commands; thin over the services.
class SessionViewSet(viewsets.ViewSet):
    lookup_field = "session_uuid"
    lookup_value_regex = "[^/]+"

    @extend_schema(operation_id="sessions_retrieve", responses={200: SessionOutput})
    def retrieve(self, request, session_uuid: str):
        session, member = selectors.session_with_membership(app=request.user, session_uuid=session_uuid)
        return Response(
            SessionOutput(
                {
                    "session_uuid": session.session_uuid,
                    "caller_id": session.caller_id,
                    "state": session.state,
                    "room_id": member.room.room_id if member else None,
                    "muted": member.muted if member else False,
                }
            ).data
        )

    @_command_schema(
        "join",
        JoinInput,
        "Put the session into a room. The member is `joining` until the engine confirms "
        "(`conference.member.joined`); no confirmation within JOIN_TIMEOUT_SECONDS fails the join "
        '(`command.result` with `error: "timeout"`). 409 `already_in_conference` names the room.',
    )
    @action(detail=True, methods=["post"], url_path="commands/conference/join")
    def join(self, request, session_uuid: str):
        return self._run(request, session_uuid, "join", JoinInput, members.join, "room_id", "muted")

    @_command_schema(
        "leave",
        CommandInput,
        "Take the session out of its room (`conference.member.left`, reason `removed`). "
        "409 `not_in_conference` unless joined.",
    )
    @action(detail=True, methods=["post"], url_path="commands/conference/leave")
    def leave(self, request, session_uuid: str):
        return self._run(request, session_uuid, "leave", CommandInput, members.leave)

    @_command_schema(
        "mute",
        CommandInput,
        "Mute the member (`conference.member.muted` when it changes). 409 `not_in_conference` unless joined.",
    )
    @action(detail=True, methods=["post"], url_path="commands/conference/mute")
    def mute(self, request, session_uuid: str):
        return self._run(request, session_uuid, "mute", CommandInput, partial(members.set_muted, muted=True))

    @_command_schema(
        "unmute",
        CommandInput,
        "Unmute the member (`conference.member.unmuted` when it changes). 409 `not_in_conference` unless joined.",
    )
    @action(detail=True, methods=["post"], url_path="commands/conference/unmute")
    def unmute(self, request, session_uuid: str):
        return self._run(request, session_uuid, "unmute", CommandInput, partial(members.set_muted, muted=False))

    @staticmethod
    def _run(request, session_uuid: str, command: str, input_class, perform, *fields: str) -> Response:
        """Validate, then run the command once per `command_uid` (services.commands): `perform`
        is the service function, given `fields` of the input."""
        data = input_class(data=request.data)
        data.is_valid(raise_exception=True)
        actor = actor_of(request)
        arguments = {name: data.validated_data[name] for name in fields}

        def perform_once(command_uid: str) -> dict:
            return perform(
                actor=actor, app=request.user, session_uuid=session_uuid, command_uid=command_uid, **arguments
            )

        body = run_command(
            actor=actor,
            app=request.user,
            session_uuid=session_uuid,
            command=f"conference/{command}",
            command_uid=data.validated_data.get("command_uid"),
            request=dict(data.validated_data),
            perform=perform_once,
        )
        return Response(AcceptedOutput(body).data, status=status.HTTP_202_ACCEPTED)
