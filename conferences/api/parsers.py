from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """Request bodies are JSON objects (SPEC section 3); NaN and Infinity are refused."""

    strict = True

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None
        if not isinstance(data, dict):
            raise ParseError("Request body must be a JSON object")
        return data
