"""The baseline of `make load`: a bare DRF endpoint writing one room row, served by the same
gunicorn, settings and middleware as the API (`bench.load_settings`), with no authentication,
rate limit, event, delivery or history."""

from django.conf import settings
from django.urls import include, path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from conferences.ids import mint_room_id
from conferences.models import Room


class NameSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class BareWrite(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def post(self, request, app_pk: int):
        serializer = NameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = Room.objects.create(
            room_id=mint_room_id(), app_id=app_pk, name=serializer.validated_data["name"], node=settings.NODE_HASH
        )
        return Response({"room_id": room.room_id}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("bench/bare-write/<int:app_pk>", BareWrite.as_view()),
    path("", include("project.urls")),
]
