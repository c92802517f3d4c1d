"""Strict JSON types (SPEC section 3): no coercion between strings, numbers and booleans."""

import re
from datetime import datetime

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string (DRF's CharField refuses NUL characters and lone surrogates). With
    `pattern` (a regular expression the whole string must match, written so that it means the
    same in Python and in JSON Schema), the schema declares it too."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, *, pattern: str | None = None, pattern_message: str = "Invalid value.", **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.pattern = pattern
        if pattern is not None:
            whole = re.compile(pattern)

            def match_whole(value: str) -> None:
                if not whole.fullmatch(value):
                    raise serializers.ValidationError(pattern_message)

            self.validators.insert(0, match_whole)  # its message first, before a length's

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DistinctListField(serializers.ListField):
    """A list whose items are distinct (`uniqueItems` in the schema)."""

    def to_internal_value(self, data):
        items = super().to_internal_value(data)
        if len(set(map(repr, items))) != len(items):
            raise serializers.ValidationError("Items must be distinct.")
        return items


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data):
        # bool is an int in Python, and 2.0 is not an integer in this API.
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be a boolean."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class Rfc3339Field(serializers.DateTimeField):
    """An RFC 3339 date-time string, offset included (`2026-11-29T15:00:00Z`), as the schema's
    `format: date-time` says; nothing looser."""

    default_error_messages = {"invalid": "Must be an RFC 3339 date-time, e.g. 2026-11-29T15:00:00Z."}
    # Seconds up to 59: a leap second has no Python datetime. Fractions up to microseconds.
    FORM = (
        r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(?:\.[0-9]{1,6})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    )
    _FORM = re.compile(FORM)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not self._FORM.fullmatch(value):
            self.fail("invalid")
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            self.fail("invalid")
