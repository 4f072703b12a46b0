"""Formatting of MLflow's numbers for people: epoch milliseconds, durations, JSON values."""

import json
from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def ms_datetime(ms):
    """Epoch milliseconds to an aware datetime, for the ``date`` filter and ``<time>``."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@register.filter
def duration(ms):
    """``850 ms``, ``1.3 s``, ``2 min 5 s``; an empty string while a trace is in progress."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:g} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


@register.filter
def json_value(value):
    """An assessment value as its JSON text (true, 4, ["a"]); strings stay bare."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
