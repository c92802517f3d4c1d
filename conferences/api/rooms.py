from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import selectors
from ..fields import StrictCharField
from ..ids import ROOM_NAME_RE
from ..services import members as member_services
from ..services import playback
from ..services import rooms as room_services
from . import playback as playback_api
from .auth import actor_of
from .pagination import PAGE_PARAMETERS, NewestFirstPagination, page_of
from .playback import PlaybackOutput, PlayInput, VolumeInput

NAME_RULE = "1 to 64 of [A-Za-z0-9_-], starting with a letter or digit."


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


class CreateInput(serializers.Serializer):
    name = StrictCharField(max_length=64, pattern=ROOM_NAME_RE.pattern, pattern_message=f"Invalid name: {NAME_RULE}")


class CreateOutput(serializers.Serializer):
    room_id = serializers.CharField()


# Rooms of the calling app, their members and their playback; thin over the services. (A
# comment, not a docstring: OPTIONS would publish a docstring as the route's description.)
class RoomViewSet(viewsets.ViewSet):
    lookup_field = "room_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="conferences_create",
        request=CreateInput,
        responses={201: CreateOutput},
        description="Create a room; emits `conference.created`. A taken name answers 409 `name_taken` "
        "with `detail.room_id` naming the live room that has it; an app at its live-room quota "
        "(`QUOTA_LIVE_ROOMS`) gets 409 `quota_exceeded`.",
    )
    def create(self, request):
        data = CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        room = room_services.create_room(actor=actor_of(request), app=request.user, name=data.validated_data["name"])
        return Response(CreateOutput(room).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="conferences_list",
        parameters=[
            OpenApiParameter("name", str, description="Exact room name."),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_of(RoomOutput)},
    )
    def list(self, request):
        name = request.query_params.get("name")
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(selectors.live_rooms(app=request.user, name=name), request, view=self)
        return paginator.get_paginated_response(RoomOutput(page, many=True).data)

    @extend_schema(operation_id="conferences_retrieve", responses={200: RoomDetailOutput})
    def retrieve(self, request, room_id: str):
        return Response(RoomDetailOutput(selectors.live_room(app=request.user, room_id=room_id)).data)

    @extend_schema(
        operation_id="conferences_destroy",
        responses={204: None},
        description="Stops playback (`conference.play.stopped`), removes every member "
        "(`conference.member.left` reason `removed`; pending joins fail with `cancelled`), then "
        "emits `conference.destroyed`. The room answers 404 afterwards.",
    )
    def destroy(self, request, room_id: str):
        room_services.destroy_room(actor=actor_of(request), app=request.user, room_id=room_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="conferences_members_list", responses={200: MemberOutput(many=True)})
    @action(detail=True, methods=["get"])
    def members(self, request, room_id: str):
        room = selectors.live_room(app=request.user, room_id=room_id)
        return Response(MemberOutput(room.current_members, many=True).data)

    @extend_schema(
        operation_id="conferences_members_kick",
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("session_uuid", str, OpenApiParameter.PATH)],
        description="Kick: `conference.member.left` with reason `removed` (a pending join fails with "
        "`cancelled`). 404 when the session is not a member.",
    )
    @action(detail=True, methods=["delete"], url_path="members/(?P<session_uuid>[^/]+)")
    def kick(self, request, room_id: str, session_uuid: str):
        member_services.kick(actor=actor_of(request), app=request.user, room_id=room_id, session_uuid=session_uuid)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="conferences_play",
        request=PlayInput,
        responses={200: PlaybackOutput},
        description=playback_api.PLAY,
    )
    @action(detail=True, methods=["post"])
    def play(self, request, room_id: str):
        data = PlayInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = playback.play(
            actor=actor_of(request), app=request.user, room_id=room_id, urls=data.validated_data["urls"]
        )
        return Response(PlaybackOutput(body).data)

    @extend_schema(
        operation_id="conferences_pause", request=None, responses={200: PlaybackOutput}, description=playback_api.PAUSE
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, room_id: str):
        return Response(
            PlaybackOutput(playback.toggle_pause(actor=actor_of(request), app=request.user, room_id=room_id)).data
        )

    @extend_schema(
        operation_id="conferences_stop", request=None, responses={200: PlaybackOutput}, description=playback_api.STOP
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, room_id: str):
        return Response(PlaybackOutput(playback.stop(actor=actor_of(request), app=request.user, room_id=room_id)).data)

    @extend_schema(
        operation_id="conferences_volume",
        request=VolumeInput,
        responses={200: PlaybackOutput},
        description=playback_api.VOLUME,
    )
    @action(detail=True, methods=["post"])
    def volume(self, request, room_id: str):
        data = VolumeInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = playback.set_volume(
            actor=actor_of(request), app=request.user, room_id=room_id, volume=data.validated_data["volume"]
        )
        return Response(PlaybackOutput(body).data)
