"""MLflow's label-schema API through the real mlflow client, served from LabelSchema."""

import pytest
from django.test import Client
from django.urls import reverse
from mlflow.exceptions import RestException

from annotation.models import LabelSchema
from tests.api.conftest import server_db
from tests.factories import make_admin, make_experiment, make_trace

pytestmark = server_db


@pytest.fixture
def genai(use_token, admin_token):
    """mlflow.genai signed in as an Admin, with an experiment of its own."""
    mlflow = use_token(admin_token)
    experiment_id = mlflow.set_experiment("genai review").experiment_id
    return mlflow.genai, experiment_id


def _error(call, *args, **kwargs) -> RestException:
    with pytest.raises(RestException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_each_input_type_round_trips_and_lands_in_tracemarks_schema(genai):
    from mlflow.genai.label_schemas import (
        InputCategorical,
        InputNumeric,
        InputPassFail,
        InputText,
    )

    genai, experiment_id = genai
    ls = genai.label_schemas
    made = {
        "correct": ls.create_label_schema(
            "correct",
            type="feedback",
            input=InputPassFail(positive_label="Correct", negative_label="Incorrect"),
            instruction="Is the answer correct?",
            enable_comment=True,
            experiment_id=experiment_id,
        ),
        "tone": ls.create_label_schema(
            "tone",
            type="feedback",
            input=InputCategorical(options=["good", "ok", "bad"]),
            experiment_id=experiment_id,
        ),
        "issues": ls.create_label_schema(
            "issues",
            type="feedback",
            input=InputCategorical(options=["facts", "tone"], multi_select=True),
            experiment_id=experiment_id,
        ),
        "score": ls.create_label_schema(
            "score",
            type="feedback",
            input=InputNumeric(min_value=1.0, max_value=5.0),
            experiment_id=experiment_id,
        ),
        "ideal": ls.create_label_schema(
            "ideal",
            type="expectation",
            input=InputText(max_length=500),
            experiment_id=experiment_id,
        ),
    }

    correct = made["correct"]
    assert correct.schema_id.startswith("ls-") and len(correct.schema_id) == 35
    assert correct.experiment_id == experiment_id
    assert correct.input == InputPassFail(positive_label="Correct", negative_label="Incorrect")
    assert (correct.instruction, correct.enable_comment) == ("Is the answer correct?", True)
    assert ls.get_label_schema(schema_id=correct.schema_id) == correct
    assert ls.get_label_schema("score", experiment_id=experiment_id).input == InputNumeric(
        min_value=1.0, max_value=5.0
    )
    assert made["issues"].input.multi_select is True
    assert made["ideal"].type == "expectation" and made["ideal"].input.max_length == 500

    stored = {schema.name: schema for schema in LabelSchema.objects.all()}
    assert stored["correct"].value_type == "boolean"
    assert (stored["correct"].positive_label, stored["correct"].kind) == ("Correct", "feedback")
    assert stored["tone"].value_type == "categorical"
    assert stored["tone"].options == ["good", "ok", "bad"]
    assert (stored["score"].min_value, stored["score"].max_value) == (1.0, 5.0)
    assert (stored["ideal"].value_type, stored["ideal"].kind) == ("text", "expectation")
    assert stored["ideal"].max_length == 500
    assert [str(e.pk) for e in stored["correct"].experiments.all()] == [experiment_id]

    listed = ls.list_label_schemas(experiment_id)
    assert [schema.name for schema in listed] == ["ideal", "score", "issues", "tone", "correct"]
    assert listed.token is None


def test_answers_are_checked_against_the_schema_made_by_the_client(genai):
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.genai.label_schemas import InputCategorical

    genai, experiment_id = genai
    genai.label_schemas.create_label_schema(
        "issues",
        type="feedback",
        input=InputCategorical(options=["facts", "tone"], multi_select=True),
        experiment_id=experiment_id,
    )
    trace = make_trace()
    human = AssessmentSource(source_type="HUMAN", source_id="ada")

    logged = mlflow.log_feedback(
        trace_id=trace.trace_id, name="issues", value=["tone", "facts"], source=human
    )
    assert mlflow.get_assessment(trace.trace_id, logged.assessment_id).value == ["tone", "facts"]
    refused = _error(
        mlflow.log_feedback, trace_id=trace.trace_id, name="issues", value=["style"], source=human
    )
    assert refused.error_code == "INVALID_PARAMETER_VALUE" and "must be one of" in refused.message


def test_a_schema_made_in_the_browser_is_read_by_the_client(genai):
    genai, experiment_id = genai
    browser = Client()
    browser.force_login(make_admin(username="adele"))
    response = browser.post(
        reverse("annotation:schema-create"),
        {
            "name": "helpful",
            "title": "Helpful?",
            "instructions": "Rate it.",
            "kind": "feedback",
            "value_type": "numeric",
            "min_value": "1",
            "max_value": "5",
            "step": "1",
            "applies_to": "both",
            "one_per_annotator": "on",
        },
    )
    assert response.status_code == 302, response.content

    schema = genai.label_schemas.get_label_schema("helpful", experiment_id=experiment_id)
    assert schema.type == "feedback"
    assert (schema.input.min_value, schema.input.max_value) == (1.0, 5.0)
    assert schema.instruction == "Rate it."
    assert schema.experiment_id == experiment_id
    assert [s.name for s in genai.label_schemas.list_label_schemas(experiment_id)] == ["helpful"]


def test_update_is_sparse_and_keeps_the_input_variant(genai):
    from mlflow.genai.label_schemas import InputCategorical, InputText

    genai, experiment_id = genai
    ls = genai.label_schemas
    made = ls.create_label_schema(
        "tone",
        type="feedback",
        input=InputCategorical(options=["good", "bad"]),
        instruction="How does it sound?",
        experiment_id=experiment_id,
    )

    updated = ls.update_label_schema(
        made.schema_id, input=InputCategorical(options=["good", "ok", "bad"])
    )
    assert updated.input.options == ["good", "ok", "bad"]
    assert updated.instruction == "How does it sound?"
    assert updated.created_at == made.created_at and updated.updated_at >= made.updated_at
    assert ls.update_label_schema(made.schema_id, instruction="").instruction is None
    assert ls.update_label_schema(made.schema_id, name="voice").name == "voice"

    changed_type = _error(ls.update_label_schema, made.schema_id, input=InputText())
    assert changed_type.error_code == "INVALID_PARAMETER_VALUE"
    assert "cannot be changed after creation" in changed_type.message
    multi = _error(
        ls.update_label_schema,
        made.schema_id,
        input=InputCategorical(options=["good"], multi_select=True),
    )
    assert "multi_select" in multi.message


def test_mlflows_refusals_arrive_as_mlflows_errors(genai):
    from mlflow.genai.label_schemas import InputCategorical, InputNumeric, InputPassFail, InputText

    genai, experiment_id = genai
    ls = genai.label_schemas

    def create(name, input, experiment_id=experiment_id):
        return ls.create_label_schema(
            name, type="feedback", input=input, experiment_id=experiment_id
        )

    create("dup", InputText())
    duplicate = _error(create, "dup", InputText())
    assert duplicate.error_code == "RESOURCE_ALREADY_EXISTS"
    assert duplicate.get_http_status_code() == 400

    cases = [
        (InputNumeric(min_value=5.0, max_value=1.0), "strictly less than"),
        (InputCategorical(options=[]), "non-empty list"),
        (InputCategorical(options=["a", "a"]), "deduplicated"),
        (InputCategorical(options=[str(n) for n in range(11)]), "at most 10"),
        (InputPassFail(positive_label="same", negative_label="same"), "distinct"),
        (InputText(max_length=0), "at least 1"),
    ]
    for number, (schema_input, message) in enumerate(cases):
        error = _error(create, f"bad {number}", schema_input)
        assert error.error_code == "INVALID_PARAMETER_VALUE" and message in error.message
    assert "at most 250" in _error(create, "n" * 251, InputText()).message
    for name in ("feedback", "FEEDBACK"):
        reserved = _error(create, name, InputText())
        assert reserved.error_code == "INVALID_PARAMETER_VALUE"
        assert reserved.get_http_status_code() == 400
        assert "`feedback` is reserved for the experiment's default question" in reserved.message
    renamed = _error(ls.update_label_schema, create("ok", InputText()).schema_id, name="Feedback")
    assert "is reserved" in renamed.message

    missing = _error(create, "elsewhere", InputText(), experiment_id="987654321")
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    unknown = _error(ls.get_label_schema, schema_id="ls-" + "0" * 32)
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"
    by_name = _error(ls.get_label_schema, "nope", experiment_id=experiment_id)
    assert by_name.get_http_status_code() == 404
    assert ls.delete_label_schema(schema_id="ls-" + "0" * 32) is None


def test_list_pages_newest_first_and_delete_removes(genai):
    from mlflow.genai.label_schemas import InputText

    genai, experiment_id = genai
    ls = genai.label_schemas
    ids = [
        ls.create_label_schema(
            f"q{n}", type="feedback", input=InputText(), experiment_id=experiment_id
        ).schema_id
        for n in range(5)
    ]
    seen, token = [], None
    while True:
        page = ls.list_label_schemas(experiment_id, max_results=2, page_token=token)
        seen += [schema.schema_id for schema in page]
        token = page.token
        if not token:
            break
    assert seen == ids[::-1]
    other = make_experiment("elsewhere")
    assert list(ls.list_label_schemas(other.experiment_id)) == []

    ls.delete_label_schema(schema_id=ids[0])
    assert not LabelSchema.objects.filter(schema_id=ids[0]).exists()
    assert _error(ls.get_label_schema, schema_id=ids[0]).error_code == "RESOURCE_DOES_NOT_EXIST"


def test_only_admins_create_change_or_delete_schemas(use_token, admin_token, reviewer_token):
    from mlflow.genai.label_schemas import InputText

    mlflow = use_token(admin_token)
    experiment_id = mlflow.set_experiment("permissions").experiment_id
    made = mlflow.genai.label_schemas.create_label_schema(
        "kept", type="feedback", input=InputText(), experiment_id=experiment_id
    )

    mlflow = use_token(reviewer_token)
    ls = mlflow.genai.label_schemas
    refused = _error(
        ls.create_label_schema, "mine", type="feedback", input=InputText(),
        experiment_id=experiment_id,
    )  # fmt: skip
    assert (refused.error_code, refused.get_http_status_code()) == ("PERMISSION_DENIED", 403)
    denied = "PERMISSION_DENIED"
    assert _error(ls.update_label_schema, made.schema_id, name="x").error_code == denied
    assert _error(ls.delete_label_schema, schema_id=made.schema_id).error_code == denied
    assert ls.get_label_schema(schema_id=made.schema_id).name == "kept"
    assert LabelSchema.objects.filter(name="kept").exists()
