"""Checks on assessment values, metadata and names; pure functions used by services."""

import math

from django.core.exceptions import ValidationError

from traces.validation import MAX_DOUBLE, InvalidInput, check_text

from .models import Kind, LabelSchema, SourceType

MAX_NAME_LENGTH = 255
MAX_VALUE_DEPTH = 32


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("An assessment needs a non-empty name.", code="invalid_name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"Assessment names are at most {MAX_NAME_LENGTH} characters.", code="invalid_name"
        )
    return name


def check_json_value(value, depth: int = 0) -> None:
    """Accept what JSON holds and reads back: None, bool, finite numbers within the range of
    doubles (values travel as protobuf doubles), text without NUL or lone surrogates, lists,
    str-keyed dicts."""
    if depth > MAX_VALUE_DEPTH:
        raise ValidationError("The value is nested too deeply.", code="invalid_value")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_storable(value)
        return
    if isinstance(value, int | float):
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_DOUBLE:
            raise ValidationError(
                "Numbers must be finite and within the range of doubles.", code="invalid_value"
            )
        return
    if isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError("Object keys must be strings.", code="invalid_value")
            _check_storable(key)
            check_json_value(item, depth + 1)
        return
    raise ValidationError(
        f"Values must be a boolean, number, string, list or object, not {type(value).__name__}.",
        code="invalid_value",
    )


def _check_storable(text: str) -> None:
    try:
        check_text(text, where="Text in the value")
    except InvalidInput as exc:
        raise ValidationError(str(exc), code="invalid_value") from None


def check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValidationError("Metadata must map strings to strings.", code="invalid_metadata")
    return metadata


def check_source_type(source_type) -> str:
    if source_type not in SourceType.values:
        allowed = ", ".join(SourceType.values)
        raise ValidationError(
            f"Source type must be one of {allowed}, not {source_type!r}.", code="invalid_source"
        )
    return source_type


def check_span_id(span_id) -> str:
    """A span id as traced apps send it: 16 lowercase hex characters."""
    if not isinstance(span_id, str) or len(span_id) != 16 or span_id.strip("0123456789abcdef"):
        raise ValidationError(
            f"Invalid span id {span_id!r}: expected 16 lowercase hex characters.",
            code="invalid_span",
        )
    return span_id


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_against_schema(schema: LabelSchema, *, kind: str, value, span_id) -> None:
    """Raise ValidationError naming what is wrong when value breaks the schema's rules."""
    label = schema.title or schema.name
    if schema.applies_to == LabelSchema.AppliesTo.TRACE and span_id:
        raise ValidationError(f"'{label}' applies to whole traces, not spans.", code="wrong_target")
    if schema.applies_to == LabelSchema.AppliesTo.SPAN and not span_id:
        raise ValidationError(f"'{label}' applies to spans, not whole traces.", code="wrong_target")
    if kind != schema.kind:
        raise ValidationError(
            f"'{label}' is defined as {Kind(schema.kind).label.lower()}, not {kind}.",
            code="wrong_kind",
        )
    if value is None:
        return
    check = _TYPE_CHECKS[schema.value_type]
    check(schema, label, value)


def _check_boolean(schema, label, value):
    if not isinstance(value, bool):
        raise ValidationError(f"'{label}' must be true or false, got {value!r}.", code="wrong_type")


def _check_numeric(schema, label, value):
    if not _is_number(value):
        raise ValidationError(f"'{label}' must be a number, got {value!r}.", code="wrong_type")
    if schema.min_value is not None and value < schema.min_value:
        raise ValidationError(
            f"'{label}' must be at least {schema.min_value:g}, got {value:g}.", code="out_of_range"
        )
    if schema.max_value is not None and value > schema.max_value:
        raise ValidationError(
            f"'{label}' must be at most {schema.max_value:g}, got {value:g}.", code="out_of_range"
        )
    if schema.step:
        origin = schema.min_value or 0
        steps = (value - origin) / schema.step
        if abs(steps - round(steps)) > 1e-9:
            raise ValidationError(
                f"'{label}' moves in steps of {schema.step:g}; {value:g} is not on a step.",
                code="off_step",
            )


def _check_categorical(schema, label, value):
    # A multi-select answer is a list of distinct options; one option alone is also accepted,
    # as the browser's widget picks one.
    if schema.multi_select and isinstance(value, list):
        if len(set(map(repr, value))) != len(value):
            raise ValidationError(f"'{label}' lists an option twice.", code="not_an_option")
        for item in value:
            _check_categorical_option(schema, label, item)
        return
    _check_categorical_option(schema, label, value)


def _check_categorical_option(schema, label, value):
    if not isinstance(value, str) or value not in schema.options:
        allowed = ", ".join(map(str, schema.options))
        raise ValidationError(
            f"'{label}' must be one of: {allowed}; got {value!r}.", code="not_an_option"
        )


def _check_text(schema, label, value):
    if not isinstance(value, str):
        raise ValidationError(f"'{label}' must be text, got {value!r}.", code="wrong_type")
    if schema.max_length is not None and len(value) > schema.max_length:
        raise ValidationError(
            f"'{label}' must be at most {schema.max_length} characters, got {len(value)}.",
            code="too_long",
        )


def _check_structured(schema, label, value):
    if not isinstance(value, dict | list):
        raise ValidationError(
            f"'{label}' must be a JSON object or list, got {value!r}.", code="wrong_type"
        )


_TYPE_CHECKS = {
    LabelSchema.ValueType.BOOLEAN: _check_boolean,
    LabelSchema.ValueType.NUMERIC: _check_numeric,
    LabelSchema.ValueType.CATEGORICAL: _check_categorical,
    LabelSchema.ValueType.TEXT: _check_text,
    LabelSchema.ValueType.STRUCTURED: _check_structured,
}
