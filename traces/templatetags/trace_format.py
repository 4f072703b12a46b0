"""Formatting of MLflow's values for people: epoch milliseconds, durations, JSON values,
request and response previews."""

import json
from datetime import UTC, datetime

from django import template

from traces.previews import readable_preview as _readable_preview

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


@register.filter
def readable_preview(preview, side):
    """A request or response preview: its readable text and raw JSON (``traces.previews``)."""
    return _readable_preview(preview or "", side)
