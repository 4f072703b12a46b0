"""Tracemark's LabelSchema in the shape of MLflow's label-schema API, both ways.

MLflow input      Tracemark value type   carried along
pass_fail         boolean                positive_label, negative_label
categorical       categorical            options, multi_select
numeric           numeric                min_value, max_value
text              text                   max_length
(text)            structured             read as text; ``tracemark.value_type`` says JSON

What MLflow's shape cannot carry (title, step, applies_to, span_types,
one_per_annotator, structured values) travels in a ``tracemark`` object next to the
schema's fields, which the MLflow client ignores. The rules below are MLflow's, with its
messages, so a script sees the answers it would see from MLflow.
"""

from .models import Kind, LabelSchema

ValueType = LabelSchema.ValueType
MAX_NAME = 250
MAX_INSTRUCTION = 1000
MAX_OPTIONS = 10
# What a boolean schema made in the browser calls its two answers.
DEFAULT_LABELS = ("Yes", "No")
RESERVED_NAME = "feedback"
_VARIANTS = {
    "pass_fail": ValueType.BOOLEAN,
    "categorical": ValueType.CATEGORICAL,
    "numeric": ValueType.NUMERIC,
    "text": ValueType.TEXT,
}
_CLASS_NAMES = {
    "pass_fail": "InputPassFail",
    "categorical": "InputCategorical",
    "numeric": "InputNumeric",
    "text": "InputText",
}
TYPES = {"FEEDBACK": Kind.FEEDBACK, "EXPECTATION": Kind.EXPECTATION}


class WireError(ValueError):
    """A request MLflow's server would refuse with INVALID_PARAMETER_VALUE."""


def to_wire(schema: LabelSchema, experiment_id: str | None = None) -> dict:
    # A schema scoped to one experiment names it; one for every experiment names the asked one.
    scope = [str(experiment.pk) for experiment in schema.experiments.all()]
    experiment_id = scope[0] if len(scope) == 1 else experiment_id
    data = {
        "schema_id": schema.schema_id,
        "name": schema.name,
        "type": "EXPECTATION" if schema.kind == Kind.EXPECTATION else "FEEDBACK",
        "enable_comment": schema.enable_comment,
        "input": wire_input(schema),
        "created_at": _ms(schema.created_at),
        "last_updated_at": _ms(schema.updated_at),
        "is_default": False,
        "tracemark": _extensions(schema),
    }
    if experiment_id is not None:
        data["experiment_id"] = experiment_id
    if schema.instructions:
        data["instruction"] = schema.instructions
    return data


def wire_input(schema: LabelSchema) -> dict:
    if schema.value_type == ValueType.BOOLEAN:
        positive, negative = DEFAULT_LABELS
        return {
            "pass_fail": {
                "positive_label": schema.positive_label or positive,
                "negative_label": schema.negative_label or negative,
            }
        }
    if schema.value_type == ValueType.CATEGORICAL:
        return {"categorical": {"options": schema.options, "multi_select": schema.multi_select}}
    if schema.value_type == ValueType.NUMERIC:
        bounds = {"min_value": schema.min_value, "max_value": schema.max_value}
        return {"numeric": {k: v for k, v in bounds.items() if v is not None}}
    text = {} if schema.max_length is None else {"max_length": schema.max_length}
    return {"text": text}


def _extensions(schema: LabelSchema) -> dict:
    extensions = {
        "value_type": schema.value_type,
        "applies_to": schema.applies_to,
        "one_per_annotator": schema.one_per_annotator,
    }
    if schema.title:
        extensions["title"] = schema.title
    if schema.step is not None:
        extensions["step"] = schema.step
    if schema.span_types:
        extensions["span_types"] = schema.span_types
    return extensions


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def variant_of(data) -> str:
    """The one input variant set in a LabelSchemaInput message."""
    if not isinstance(data, dict):
        raise WireError("Label schema `input` must be an object.")
    present = [key for key in _VARIANTS if data.get(key) is not None]
    if len(present) != 1:
        raise WireError(
            "Label schema `input` must have exactly one of `pass_fail`, `categorical`, "
            "`numeric`, or `text` set; got an empty oneof."
            if not present
            else f"Label schema `input` must have exactly one variant set; got {present}."
        )
    return present[0]


def input_fields(data) -> dict:
    """The LabelSchema fields an MLflow input sets, checked by MLflow's rules."""
    variant = variant_of(data)
    body = data[variant]
    if not isinstance(body, dict):
        raise WireError(f"Label schema input `{variant}` must be an object.")
    fields = {
        "value_type": _VARIANTS[variant],
        "options": [],
        "multi_select": False,
        "min_value": None,
        "max_value": None,
        "step": None,
        "max_length": None,
        "positive_label": "",
        "negative_label": "",
    }
    fields.update(_READERS[variant](body))
    return fields


def _pass_fail(body) -> dict:
    positive, negative = body.get("positive_label"), body.get("negative_label")
    for name, label in (("positive_label", positive), ("negative_label", negative)):
        if not isinstance(label, str) or not label.strip():
            raise WireError(f"`InputPassFail.{name}` must be a non-empty string; got {label!r}.")
        if len(label) > 255:
            raise WireError(f"`InputPassFail.{name}` must be at most 255 characters.")
    if positive == negative:
        raise WireError(
            "`InputPassFail.positive_label` and `negative_label` must be distinct; "
            f"got {positive!r} for both."
        )
    return {"positive_label": positive, "negative_label": negative}


def _categorical(body) -> dict:
    options = body.get("options")
    if not isinstance(options, list) or not options:
        raise WireError(f"`InputCategorical.options` must be a non-empty list; got {options!r}.")
    if len(options) > MAX_OPTIONS:
        raise WireError(
            f"`InputCategorical.options` must have at most {MAX_OPTIONS} entries; "
            f"got {len(options)}."
        )
    seen = set()
    for option in options:
        if not isinstance(option, str) or not option or len(option) > 255:
            raise WireError(
                f"`InputCategorical.options` entries must be non-empty strings; got {option!r}."
            )
        if option in seen:
            raise WireError(
                f"`InputCategorical.options` must be deduplicated; {option!r} appears twice."
            )
        seen.add(option)
    multi_select = body.get("multi_select", False)
    if not isinstance(multi_select, bool):
        raise WireError("`InputCategorical.multi_select` must be a boolean.")
    return {"options": options, "multi_select": multi_select}


def _numeric(body) -> dict:
    bounds = {}
    for name in ("min_value", "max_value"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or abs(value) == float("inf")
            or value != value
        ):
            raise WireError(f"`InputNumeric.{name}` must be a finite number; got {value!r}.")
        bounds[name] = None if value is None else float(value)
    low, high = bounds["min_value"], bounds["max_value"]
    if low is not None and high is not None and low >= high:
        raise WireError(
            "`InputNumeric.min_value` must be strictly less than `max_value`; "
            f"got min={low}, max={high}."
        )
    return bounds


def _text(body) -> dict:
    max_length = body.get("max_length")
    if max_length is None:
        return {}
    if isinstance(max_length, str) and max_length.isdigit():
        max_length = int(max_length)
    if isinstance(max_length, bool) or not isinstance(max_length, int):
        raise WireError(f"`InputText.max_length` must be an integer; got {max_length!r}.")
    if not 1 <= max_length <= 2**31 - 1:
        raise WireError(f"`InputText.max_length` must be at least 1; got {max_length}.")
    return {"max_length": max_length}


_READERS = {
    "pass_fail": _pass_fail,
    "categorical": _categorical,
    "numeric": _numeric,
    "text": _text,
}


def check_same_variant(schema: LabelSchema, fields: dict) -> None:
    """MLflow fixes a schema's input variant and multi_select once it is made."""
    existing = next(iter(wire_input(schema)))
    new = next(k for k, v in _VARIANTS.items() if v == fields["value_type"])
    if existing != new or schema.value_type == ValueType.STRUCTURED:
        raise WireError(
            "A label schema's input type cannot be changed after creation "
            f"(existing: {_CLASS_NAMES[existing]}, got: {_CLASS_NAMES[new]})."
        )
    if fields["multi_select"] != schema.multi_select:
        raise WireError("`InputCategorical.multi_select` cannot be changed after creation.")


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise WireError(f"Label schema `name` must be a non-empty string; got {name!r}.")
    if len(name) > MAX_NAME:
        raise WireError(
            f"Label schema `name` must be at most {MAX_NAME} characters; got {len(name)}."
        )
    if name.lower() == RESERVED_NAME:
        # MLflow keeps it, in any case, for the experiment's default question.
        raise WireError(
            f"`{RESERVED_NAME}` is reserved for the experiment's default question and cannot "
            "be used for another label schema."
        )
    return name


def check_instruction(instruction) -> str:
    if not isinstance(instruction, str):
        raise WireError("Label schema `instruction` must be a string.")
    if len(instruction) > MAX_INSTRUCTION:
        raise WireError(
            f"Label schema `instruction` must be at most {MAX_INSTRUCTION} characters; "
            f"got {len(instruction)}."
        )
    return instruction
