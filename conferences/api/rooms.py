from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..fields import StrictCharField
from ..ids import ROOM_NAME_RE
from ..services import members as member_services
from ..services import rooms as room_services
from .auth import actor_of
from .pagination import RoomCursorPagination

NAME_RULE = "1 to 64 of [A-Za-z0-9_-], starting with a letter or digit."


def validate_room_name(value: str) -> str:
    if not ROOM_NAME_RE.fullmatch(value):
        raise serializers.ValidationError(f"Invalid name: {NAME_RULE}")
    return value


class MemberOutput(serializers.Serializer):
    session_uuid = serializers.CharField(source="session.session_uuid")
    caller_id = serializers.CharField(source="session.caller_id")
    state = serializers.ChoiceField(choices=["joining", "joined"])
    muted = serializers.BooleanField()
    joined_at = serializers.DateTimeField(allow_null=True)


class RoomOutput(serializers.Serializer):
    room_id = serializers.CharField()
    name = serializers.CharField()
    app_id = serializers.CharField(source="app.app_id")
    node = serializers.CharField()
    playback_status = serializers.ChoiceField(choices=["stopped", "playing", "paused"])
    playback_operation_id = serializers.UUIDField(allow_null=True)
    playback_urls = serializers.ListField(child=serializers.CharField())
    volume = serializers.IntegerField()
    member_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class RoomDetailOutput(RoomOutput):
    members = MemberOutput(many=True, source="current_members")


class RoomListApi(APIView):
    class CreateInput(serializers.Serializer):
        name = StrictCharField(max_length=64, validators=[validate_room_name])

    class CreateOutput(serializers.Serializer):
        room_id = serializers.CharField()

    @extend_schema(
        operation_id="conferences_create",
        request=CreateInput,
        responses={201: CreateOutput},
        description="Create a room; emits `conference.created`. A taken name answers 409 `name_taken` "
        "with `detail.room_id` naming the live room that has it.",
    )
    def post(self, request):
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        room = room_services.create_room(actor=actor_of(request), app=request.user, name=data.validated_data["name"])
        return Response({"room_id": room.room_id}, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="conferences_list",
        parameters=[
            OpenApiParameter("name", str, description="Exact room name."),
            OpenApiParameter("limit", int, description="Page size, 1 to 200 (default 50)."),
            OpenApiParameter("cursor", str, description="Opaque cursor from `next` or `previous`."),
        ],
        responses={200: RoomOutput(many=True)},
    )
    def get(self, request):
        name = request.query_params.get("name")
        paginator = RoomCursorPagination()
        page = paginator.paginate_queryset(selectors.live_rooms(app=request.user, name=name), request, view=self)
        return paginator.get_paginated_response(RoomOutput(page, many=True).data)


class RoomDetailApi(APIView):
    @extend_schema(operation_id="conferences_retrieve", responses={200: RoomDetailOutput})
    def get(self, request, room_id: str):
        room = selectors.live_room(app=request.user, room_id=room_id)
        return Response(RoomDetailOutput(room).data)

    @extend_schema(
        operation_id="conferences_destroy",
        responses={204: None},
        description="Stops playback (`conference.play.stopped`), removes every member "
        "(`conference.member.left` reason `removed`; pending joins fail with `cancelled`), then "
        "emits `conference.destroyed`. The room answers 404 afterwards.",
    )
    def delete(self, request, room_id: str):
        room_services.destroy_room(actor=actor_of(request), app=request.user, room_id=room_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomMembersApi(APIView):
    @extend_schema(operation_id="conferences_members_list", responses={200: MemberOutput(many=True)})
    def get(self, request, room_id: str):
        room = selectors.live_room(app=request.user, room_id=room_id)
        return Response(MemberOutput(room.current_members, many=True).data)


class RoomMemberApi(APIView):
    @extend_schema(
        operation_id="conferences_members_kick",
        responses={204: None},
        description="Kick: `conference.member.left` with reason `removed` (a pending join fails with "
        "`cancelled`). 404 when the session is not a member.",
    )
    def delete(self, request, room_id: str, session_uuid: str):
        member_services.kick(actor=actor_of(request), app=request.user, room_id=room_id, session_uuid=session_uuid)
        return Response(status=status.HTTP_204_NO_CONTENT)
