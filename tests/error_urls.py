"""The project's URLs plus two views that fail, for the 500 error-shape tests."""

from django.urls import path
from rest_framework.views import APIView

from project.urls import handler400, handler403, handler404, handler500  # noqa: F401
from project.urls import urlpatterns as project_urlpatterns


def django_view_that_fails(request):
    raise RuntimeError("boom")


class ApiViewThatFails(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        raise RuntimeError("boom")


urlpatterns = [
    path("fail/django", django_view_that_fails),
    path("fail/api", ApiViewThatFails.as_view()),
    *project_urlpatterns,
]
