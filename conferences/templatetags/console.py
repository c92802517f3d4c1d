"""Filters for the support console's timeline."""

import json

from django import template

register = template.Library()


@register.filter
def seconds_after(later, earlier) -> str:
    """`+1.234 s`: how long after `earlier` (the event) `later` (an attempt) happened."""
    if later is None or earlier is None:
        return ""
    return f"+{(later - earlier).total_seconds():.3f} s"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
