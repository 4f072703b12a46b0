"""What outside input may hold so that everything stored can be read back.

Stored values travel back out through PostgreSQL (no NUL in text or jsonb, UTF-8 without lone
surrogates), through the MLflow client's protobuf parser (doubles, int64s, timestamps from
year 1 to 9999) and through Python's recursion limit. The API boundary (traces.rest) and
ingest run these pure checks before anything is written; each raises InvalidInput naming
where the offending value sits.
"""

import math
import re
import sys

MAX_JSON_DEPTH = 64
INT64_MAX = 2**63 - 1
# The last representable double: a larger integer turns into infinity as a protobuf Value.
MAX_DOUBLE = sys.float_info.max
# Milliseconds since the epoch: 1970-01-01 to 9999-12-31, what the client can turn into a
# datetime and every database column can hold.
MAX_TIMESTAMP_MS = 253_402_300_799_999
# The trace list indexes trace names, and a PostgreSQL index entry holds at most 2,704 bytes.
MAX_TRACE_NAME_LENGTH = 500
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


class InvalidInput(ValueError):
    """A value that cannot be stored and read back; the message says which and why."""


def check_json(value, *, where: str = "The request body", max_int: float = MAX_DOUBLE) -> int:
    """Refuse what cannot come back out: deep nesting, non-finite numbers, integers beyond
    ``max_int`` in magnitude, and strings (keys included) with NUL or lone surrogates.

    Returns the value's size as JSON, about: characters of text plus a few per item.
    """
    size = 0
    stack = [(value, 0, where)]
    while stack:
        item, depth, path = stack.pop()
        size += 4
        if isinstance(item, str):
            size += len(item)
            if not is_storable_text(item):
                raise InvalidInput(f"{path} holds a NUL character or a lone surrogate.")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > max_int:
                raise InvalidInput(f"{path} holds a number too large to represent.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(f"{path} holds a number that is not finite.")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidInput(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels.")
            if isinstance(item, list):
                stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str) or not is_storable_text(key):
                    raise InvalidInput(f"{path} has a key that is not a storable string.")
                size += len(key) + 4
                stack.append((v, depth + 1, f"{path}.{key[:40]}"))
        else:
            raise InvalidInput(f"{path} holds a {type(item).__name__}, which JSON does not.")
    return size


def is_storable_text(value: str) -> bool:
    return not _NUL_OR_SURROGATE.search(value)


def check_text(value: str, *, where: str, max_length: int | None = None) -> str:
    if not is_storable_text(value):
        raise InvalidInput(f"{where} holds a NUL character or a lone surrogate.")
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(f"{where} is longer than {max_length} characters.")
    return value


def parse_id(value, *, where: str) -> int:
    """A database id written in ASCII digits ("²" and "١" are digits to str.isdigit)."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise InvalidInput(f"Invalid {where} {str(value)[:100]!r}: expected a decimal number.")
    number = int(value)
    if number > INT64_MAX:
        raise InvalidInput(f"Invalid {where} {value[:100]!r}: the number is too large.")
    return number


def check_int(value: int, *, where: str, low: int = -INT64_MAX - 1, high: int = INT64_MAX) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"{where} must be between {low} and {high}, got {str(value)[:40]}.")
    return value
