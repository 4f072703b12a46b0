"""Forms for session items: session ids typed or pasted, and adding sessions to a queue."""

import re

from django import forms

MAX_SESSIONS = 5000


class SessionIdsField(forms.CharField):
    """Session ids separated by new lines or commas (ids may hold spaces), without repeats."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Session ids")
        kwargs.setdefault("help_text", "One session id a line (or separated by commas).")
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        ids = list(dict.fromkeys(s.strip() for s in re.split(r"[\n,]+", text) if s.strip()))
        if len(ids) > MAX_SESSIONS:
            raise forms.ValidationError(f"At most {MAX_SESSIONS} sessions at once.")
        if any(len(s) > 255 for s in ids):
            raise forms.ValidationError("A session id has at most 255 characters.")
        return ids


class AddSessionsForm(forms.Form):
    session_ids = SessionIdsField(required=True)
