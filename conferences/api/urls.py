from django.urls import path

from . import rooms

urlpatterns = [
    path("conferences", rooms.RoomListApi.as_view(), name="conferences"),
    path("conferences/<str:room_id>", rooms.RoomDetailApi.as_view(), name="conference"),
]
