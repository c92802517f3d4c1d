"""Playback's inputs and outputs (the actions themselves are the room viewset's)."""

from rest_framework import serializers

from ..fields import StrictCharField, StrictIntegerField
from ..models.rooms import VOLUME_MAX, VOLUME_MIN
from ..ssrf import MAX_URL_LENGTH, URL_PATTERN, URL_RULE, check_media_urls

MAX_URLS = 128


class PlayInput(serializers.Serializer):
    urls = serializers.ListField(
        child=StrictCharField(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN, pattern_message=URL_RULE),
        allow_empty=False,
        min_length=1,  # the same rule, as the schema's minItems
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


PLAY = (
    "Play the URLs into the room (`conference.play.started`); 409 `playback_active` unless stopped. URLs on "
    "loopback, private, link-local, multicast or reserved addresses are refused with 400 (unless "
    "MEDIA_ALLOW_PRIVATE). Exactly one of `conference.play.finished`, `.failed` or `.stopped` ends it; with no "
    "terminal event within PLAYBACK_TIMEOUT_SECONDS (paused time excluded, engine progress restarts the clock) "
    "it fails with `playback_timeout`."
)
PAUSE = (
    "A toggle: `conference.play.paused` when playing, `conference.play.resumed` when paused. "
    "409 `no_playback` when stopped."
)
STOP = "`conference.play.stopped`; 409 `no_playback` when stopped."
VOLUME = (
    "Set the room's volume (-50 to 7) for the current and later playbacks; "
    "`conference.play.volume_changed`. Allowed in any playback state."
)
