from django.urls import path

from . import engine, playback, rooms, sessions

urlpatterns = [
    path("conferences", rooms.RoomListApi.as_view(), name="conferences"),
    path("conferences/<str:room_id>", rooms.RoomDetailApi.as_view(), name="conference"),
    path("conferences/<str:room_id>/members", rooms.RoomMembersApi.as_view(), name="conference-members"),
    path(
        "conferences/<str:room_id>/members/<str:session_uuid>",
        rooms.RoomMemberApi.as_view(),
        name="conference-member",
    ),
    path("conferences/<str:room_id>/play", playback.PlayApi.as_view(), name="conference-play"),
    path("conferences/<str:room_id>/pause", playback.PauseApi.as_view(), name="conference-pause"),
    path("conferences/<str:room_id>/stop", playback.StopApi.as_view(), name="conference-stop"),
    path("conferences/<str:room_id>/volume", playback.VolumeApi.as_view(), name="conference-volume"),
    path("sessions/<str:session_uuid>", sessions.SessionDetailApi.as_view(), name="session"),
    *(
        path(
            f"sessions/<str:session_uuid>/commands/conference/{command}",
            sessions.command_view(command, input_class),
            name=f"session-{command}",
        )
        for command, (input_class, _) in sessions.COMMANDS.items()
    ),
    path("engine/events", engine.EngineEventsApi.as_view(), name="engine-events"),
]
