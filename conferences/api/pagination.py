from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class RoomCursorPagination(CursorPagination):
    """`{"next", "previous", "results"}`, newest first; `?limit=` from 1 to 200."""

    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"limit": [f"Must be an integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = False
        # The position is an id: anything else is a forged cursor.
        if cursor is False or (cursor is not None and cursor.position is not None and not str(cursor.position).isdigit()):
            raise ValidationError({"cursor": ["Invalid cursor."]})
        return cursor
