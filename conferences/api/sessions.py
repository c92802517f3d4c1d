from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..fields import StrictBooleanField, StrictCharField
from ..ids import COMMAND_UID_RE
from ..services import members
from ..services.commands import run_command
from .auth import actor_of


def validate_command_uid(value: str) -> str:
    if not COMMAND_UID_RE.fullmatch(value):
        raise serializers.ValidationError("Must be 1 to 128 of [A-Za-z0-9._-].")
    return value


class CommandInput(serializers.Serializer):
    command_uid = StrictCharField(required=False, max_length=128, validators=[validate_command_uid])


class JoinInput(CommandInput):
    room_id = StrictCharField(max_length=64)
    muted = StrictBooleanField(required=False, default=False)


class AcceptedOutput(serializers.Serializer):
    operation_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["in_progress"])
    timeout_ms = serializers.IntegerField()


COMMANDS = {
    # command: (input, service call)
    "join": (JoinInput, lambda data, **kw: members.join(room_id=data["room_id"], muted=data["muted"], **kw)),
    "leave": (CommandInput, lambda data, **kw: members.leave(**kw)),
    "mute": (CommandInput, lambda data, **kw: members.set_muted(muted=True, **kw)),
    "unmute": (CommandInput, lambda data, **kw: members.set_muted(muted=False, **kw)),
}


class SessionCommandApi(APIView):
    command = ""

    def post(self, request, session_uuid: str):
        input_class, perform = COMMANDS[self.command]
        data = input_class(data=request.data)
        data.is_valid(raise_exception=True)
        actor = actor_of(request)
        body = run_command(
            actor=actor,
            app=request.user,
            session_uuid=session_uuid,
            command=f"conference/{self.command}",
            command_uid=data.validated_data.get("command_uid"),
            request=dict(data.validated_data),
            perform=lambda command_uid: perform(
                data.validated_data, actor=actor, app=request.user, session_uuid=session_uuid, command_uid=command_uid
            ),
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)


def command_view(command: str, input_class):
    description = {
        "join": "Put the session into a room. The member is `joining` until the engine confirms "
        "(`conference.member.joined`); no confirmation within JOIN_TIMEOUT_SECONDS fails the join "
        "(`command.result` with `error: \"timeout\"`). 409 `already_in_conference` names the room.",
        "leave": "Take the session out of its room (`conference.member.left`, reason `removed`). "
        "409 `not_in_conference` unless joined.",
        "mute": "Mute the member (`conference.member.muted` when it changes). 409 `not_in_conference` unless joined.",
        "unmute": "Unmute the member (`conference.member.unmuted` when it changes). "
        "409 `not_in_conference` unless joined.",
    }[command]
    def post(self, request, session_uuid: str):
        return SessionCommandApi.post(self, request, session_uuid)

    view = type(f"Session{command.title()}Api", (SessionCommandApi,), {"command": command, "post": post})
    view.post = extend_schema(
        operation_id=f"sessions_conference_{command}",
        request=input_class,
        responses={202: AcceptedOutput},
        description=description + " The outcome also arrives as a `command.result` event; a repeated "
        "`command_uid` within 24 h returns the first response and runs nothing.",
    )(post)
    return view.as_view()


class SessionOutput(serializers.Serializer):
    session_uuid = serializers.CharField()
    caller_id = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "ended"])
    room_id = serializers.CharField(allow_null=True)
    muted = serializers.BooleanField()


class SessionDetailApi(APIView):
    @extend_schema(operation_id="sessions_retrieve", responses={200: SessionOutput})
    def get(self, request, session_uuid: str):
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
