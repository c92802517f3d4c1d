from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..fields import StrictCharField, StrictIntegerField
from ..models.rooms import VOLUME_MAX, VOLUME_MIN
from ..services import playback
from ..ssrf import check_media_urls, url_problem
from .auth import actor_of

MAX_URLS, MAX_URL_LENGTH = 128, 2048


def validate_audio_url(value: str) -> str:
    if problem := url_problem(value):
        raise serializers.ValidationError(problem)
    return value


class PlayInput(serializers.Serializer):
    urls = serializers.ListField(
        child=StrictCharField(max_length=MAX_URL_LENGTH, validators=[validate_audio_url]),
        allow_empty=False,
        max_length=MAX_URLS,
    )

    def validate_urls(self, urls: list[str]) -> list[str]:
        if problems := check_media_urls(urls):
            raise serializers.ValidationError(problems)
        return urls


class VolumeInput(serializers.Serializer):
    volume = StrictIntegerField(min_value=VOLUME_MIN, max_value=VOLUME_MAX)


class PlaybackOutput(serializers.Serializer):
    operation_id = serializers.CharField()
    playback_status = serializers.ChoiceField(choices=["stopped", "playing", "paused"])
    volume = serializers.IntegerField()


class PlayApi(APIView):
    @extend_schema(
        operation_id="conferences_play", request=PlayInput, responses={200: PlaybackOutput},
        description="Play the URLs into the room (`conference.play.started`); 409 `playback_active` unless "
        "stopped. URLs on loopback, private, link-local, multicast or reserved addresses are refused with 400 "
        "(unless MEDIA_ALLOW_PRIVATE). Exactly one of `conference.play.finished`, `.failed` or `.stopped` ends it; with no "
        "terminal event within PLAYBACK_TIMEOUT_SECONDS (paused time excluded, engine progress restarts "
        "the clock) it fails with `playback_timeout`.",
    )
    def post(self, request, room_id: str):
        data = PlayInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = playback.play(actor=actor_of(request), app=request.user, room_id=room_id,
                             urls=data.validated_data["urls"])
        return Response(PlaybackOutput(body).data)


class PauseApi(APIView):
    @extend_schema(
        operation_id="conferences_pause", request=None, responses={200: PlaybackOutput},
        description="A toggle: `conference.play.paused` when playing, `conference.play.resumed` when paused. "
        "409 `no_playback` when stopped.",
    )
    def post(self, request, room_id: str):
        return Response(PlaybackOutput(playback.toggle_pause(actor=actor_of(request), app=request.user,
                                                             room_id=room_id)).data)


class StopApi(APIView):
    @extend_schema(
        operation_id="conferences_stop", request=None, responses={200: PlaybackOutput},
        description="`conference.play.stopped`; 409 `no_playback` when stopped.",
    )
    def post(self, request, room_id: str):
        return Response(PlaybackOutput(playback.stop(actor=actor_of(request), app=request.user,
                                                     room_id=room_id)).data)


class VolumeApi(APIView):
    @extend_schema(
        operation_id="conferences_volume", request=VolumeInput, responses={200: PlaybackOutput},
        description="Set the room's volume (-50 to 7) for the current and later playbacks; "
        "`conference.play.volume_changed`. Allowed in any playback state.",
    )
    def post(self, request, room_id: str):
        data = VolumeInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = playback.set_volume(actor=actor_of(request), app=request.user, room_id=room_id,
                                   volume=data.validated_data["volume"])
        return Response(PlaybackOutput(body).data)
