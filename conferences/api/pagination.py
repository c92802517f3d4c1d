from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

MAX_PAGE = 200


class NewestFirstPagination(CursorPagination):
    """`{"next", "previous", "results"}`, newest first; `?limit=` from 1 to 200."""

    ordering = "-id"
    page_size = 50
    max_page_size = MAX_PAGE
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
        position = None if cursor in (None, False) else cursor.position
        if cursor is False or (position is not None and not (str(position).isascii() and str(position).isdigit())):
            raise ValidationError({"cursor": ["Invalid cursor."]})
        return cursor


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        description=f"Page size, 1 to {MAX_PAGE} (default 50).",
    ),
    OpenApiParameter("cursor", str, description="Opaque cursor from `next` or `previous`."),
]

_pages: dict[type, type] = {}


def page_of(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The documented shape of a page of `item`s."""
    if item not in _pages:
        _pages[item] = type(
            f"{item.__name__.removesuffix('Output')}Page",
            (serializers.Serializer,),
            {
                "is_page": True,
                "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
                "previous": serializers.URLField(allow_null=True, help_text="The previous page, or null."),
                "results": item(many=True),
            },
        )
    return _pages[item]
