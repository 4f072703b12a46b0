"""JSON text for assessment values that PostgreSQL's jsonb gives back as the same numbers.

jsonb keeps numbers as ``numeric``: it keeps a number's decimal places but not its form,
so ``1e+20`` comes back as the integer ``100000000000000000000`` and ``-0.0`` as ``0.0``
(numeric has no negative zero). An exported value would then change type between storing
and reading. The encoder writes every float that Python would spell with an exponent in
plain digits with a ``.0``, which jsonb keeps as a decimal, so it reads back as a float;
negative zero is written as zero with ``NEGATIVE_ZERO_PLACES`` decimal places, which
jsonb keeps too and the decoder turns back into ``-0.0``. On SQLite the text is stored
as written. Both read back as the Python values that were written.
"""

import functools
import json
import math
from decimal import Decimal

NEGATIVE_ZERO_PLACES = 17
_NEGATIVE_ZERO = "-0." + "0" * NEGATIVE_ZERO_PLACES


def _float_text(number: float) -> str:
    if not math.isfinite(number):
        return json.dumps(number)
    if number == 0 and math.copysign(1, number) < 0:
        return _NEGATIVE_ZERO
    text = repr(number)
    if "e+" in text:
        return f"{Decimal(text):f}.0"
    return text


def _parse_float(text: str) -> float:
    # jsonb drops the sign of a zero but keeps its decimal places.
    if text.lstrip("-") == _NEGATIVE_ZERO[1:]:
        return -0.0
    return float(text)


def _dumps(value) -> str:
    if type(value) is float:
        return _float_text(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(str(key))}: {_dumps(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_dumps(item) for item in value) + "]"
    return json.dumps(value)


class ExactNumberEncoder(json.JSONEncoder):
    """JSONField encoder: floats in a form jsonb keeps (see the module docstring)."""

    def encode(self, o) -> str:
        return _dumps(o)


class ExactNumberDecoder(json.JSONDecoder):
    """JSONField decoder: reads back what ExactNumberEncoder wrote."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parse_float", _parse_float)
        super().__init__(*args, **kwargs)


_DECODER = ExactNumberDecoder()


@functools.lru_cache(maxsize=4096)
def _load_scalar(text: str):
    return _DECODER.decode(text)


def loads(text: str | None):
    """What the value field reads from its stored JSON text (None stays None), for readers
    that select the text itself: many rows share a few scalar values, decoded once;
    objects and arrays are decoded afresh, as nobody may share them."""
    if text is None:
        return None
    if text[:1] in ("{", "["):
        return _DECODER.decode(text)
    return _load_scalar(text)
