from django.http import JsonResponse

from .errors import error_body


class RefuseNulCharactersMiddleware:
    """A NUL in the path, the query or a header can reach no valid object and PostgreSQL text
    cannot hold it: answer 400 here rather than fail deeper."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = [request.path, request.META.get("QUERY_STRING", "")]
        raw += [value for key, value in request.META.items() if key.startswith("HTTP_") and isinstance(value, str)]
        if any("\x00" in value or "%00" in value for value in raw):
            body = error_body(
                "Invalid request: NUL characters are not allowed", "invalid", {"request": ["NUL character."]}
            )
            return JsonResponse(body, status=400)
        return self.get_response(request)
