"""The evaluate–review–dataset loop with the real mlflow client against a Tracemark server.

1. ``start``: ``mlflow.genai.evaluate()`` with a code scorer over a few questions, two
   label schemas (is the answer correct; the ideal answer), and a review queue holding the
   evaluation's traces for one reviewer. Needs an Admin's token (schemas and queues are
   Admins'); prints the queue id.
2. Label the queue: in the browser (Queues → Label, as the reviewer), or ``label`` with the
   reviewer's token, which answers each item through the API and marks it complete.
3. ``finish``: reads the queue's completed items back and merges their traces, with the
   reviewer's expectations, into an evaluation dataset; prints ``to_df()``.

``all`` runs the three steps, labelling with ``--reviewer-token``. Example::

    export MLFLOW_TRACKING_URI=http://127.0.0.1:8000 MLFLOW_TRACKING_TOKEN=tmk_...  # an Admin
    python docs/examples/review_loop.py all --reviewer rita --reviewer-token tmk_...

Every step prints one JSON line (``--json``) or a short text summary.
"""

import argparse
import json
import os

import mlflow
import mlflow.genai.datasets
import mlflow.genai.label_schemas
import mlflow.genai.review_queues
from mlflow.entities import AssessmentSource, AssessmentSourceType
from mlflow.exceptions import MlflowException
from mlflow.genai.label_schemas import InputPassFail, InputText
from mlflow.genai.scorers import scorer

QUESTIONS = {
    "What is the capital of France?": "Paris",
    "What is 2 + 2?": "4",
    "Which planet is the largest?": "Jupiter",
}
ANSWERS = {"What is the capital of France?": "Paris", "What is 2 + 2?": "5"}
CORRECT, IDEAL = "correct", "ideal_answer"


def answer(question: str) -> str:
    """The app under review: it knows two answers, one of them wrong."""
    return ANSWERS.get(question, "I don't know")


@scorer
def mentions_expected(outputs, expectations) -> bool:
    return expectations["expected"].lower() in outputs.lower()


def _schema(name: str, experiment_id: str, **fields):
    """The experiment's schema of that name, made on the first run."""
    ls = mlflow.genai.label_schemas
    try:
        return ls.create_label_schema(name, experiment_id=experiment_id, **fields)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return ls.get_label_schema(name, experiment_id=experiment_id)


def start(experiment: str, reviewer: str) -> dict:
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    data = [
        {"inputs": {"question": q}, "expectations": {"expected": a}} for q, a in QUESTIONS.items()
    ]
    result = mlflow.genai.evaluate(data=data, scorers=[mentions_expected], predict_fn=answer)
    traces = mlflow.search_traces(
        locations=[experiment_id],
        filter_string=f"attributes.run_id = '{result.run_id}'",
        return_type="list",
    )
    schemas = [
        _schema(
            CORRECT, experiment_id, type="feedback", instruction="Is the answer correct?",
            input=InputPassFail(positive_label="Correct", negative_label="Wrong"),
        ),
        _schema(
            IDEAL, experiment_id, type="expectation",
            instruction="What should the answer be?", input=InputText(),
        ),
    ]  # fmt: skip
    rq = mlflow.genai.review_queues
    queue = rq.create_review_queue(
        f"Review of run {result.run_id}",
        queue_type="custom",
        users=[reviewer],
        schema_ids=[schema.schema_id for schema in schemas],
        experiment_id=experiment_id,
    )
    items = rq.add_items_to_review_queue(
        queue.queue_id, item_ids=[trace.info.trace_id for trace in traces]
    )
    return {
        "experiment_id": experiment_id,
        "run_id": result.run_id,
        "metrics": result.metrics,
        "traces": sorted(trace.info.trace_id for trace in traces),
        "schemas": [schema.name for schema in schemas],
        "queue_id": queue.queue_id,
        "items": len(items),
    }


def label(queue_id: str, reviewer: str) -> dict:
    """Answer every pending item as the reviewer would: correct when the app's answer is the
    expected one, and the expected answer as the ideal."""
    rq = mlflow.genai.review_queues
    source = AssessmentSource(AssessmentSourceType.HUMAN, reviewer)
    labelled = []
    for item in rq.list_review_queue_items(queue_id, status="pending"):
        trace = mlflow.get_trace(item.item_id)
        question = json.loads(trace.data.request or "{}").get("question", "")
        ideal = QUESTIONS.get(question, "")
        mlflow.log_feedback(
            trace_id=item.item_id, name=CORRECT, value=answer(question) == ideal, source=source
        )
        mlflow.log_expectation(trace_id=item.item_id, name=IDEAL, value=ideal, source=source)
        rq.set_review_queue_item_status(queue_id, item_id=item.item_id, status="complete")
        labelled.append(item.item_id)
    return {"labelled": sorted(labelled)}


def finish(queue_id: str, dataset_name: str, experiment_id: str) -> dict:
    completed = mlflow.genai.review_queues.list_review_queue_items(queue_id, status="complete")
    traces = [mlflow.get_trace(item.item_id) for item in completed]
    dataset = mlflow.genai.datasets.create_dataset(name=dataset_name, experiment_id=experiment_id)
    dataset.merge_records(traces)
    frame = mlflow.genai.datasets.get_dataset(dataset_id=dataset.dataset_id).to_df()
    return {
        "completed": sorted(item.item_id for item in completed),
        "dataset_id": dataset.dataset_id,
        "records": json.loads(
            frame[["inputs", "expectations", "source"]].to_json(orient="records")
        ),
        "table": frame[["inputs", "expectations"]].to_string(),
    }


def _reviewer_session(token: str):
    """Switch the client to the reviewer's token for the label step."""
    from mlflow.store.tracking.rest_store import RestStore

    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    RestStore._get_server_version.cache_clear()


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["start", "label", "finish", "all"])
    parser.add_argument("--experiment", default="review-loop")
    parser.add_argument("--reviewer", default="rita", help="the reviewer's Tracemark username")
    parser.add_argument("--reviewer-token", help="label and all: the reviewer's API token")
    parser.add_argument("--queue", help="label and finish: the queue id that start printed")
    parser.add_argument("--experiment-id", help="finish: the experiment id start printed")
    parser.add_argument("--dataset", default="reviewed answers")
    parser.add_argument("--json", action="store_true", help="print one JSON line per step")
    args = parser.parse_args(argv)
    admin_token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
    results = []

    def report(step: str, result: dict) -> None:
        results.append(result)
        shown = {k: v for k, v in result.items() if k != "table"}
        print(json.dumps({"step": step, **shown}) if args.json else f"{step}: {shown}")
        if "table" in result and not args.json:
            print(result["table"])

    if args.step in ("start", "all"):
        report("start", start(args.experiment, args.reviewer))
        args.queue, args.experiment_id = results[-1]["queue_id"], results[-1]["experiment_id"]
    if args.step in ("label", "all"):
        if not args.reviewer_token or not args.queue:
            parser.error("label needs --reviewer-token and --queue (all needs the token)")
        _reviewer_session(args.reviewer_token)
        report("label", label(args.queue, args.reviewer))
        _reviewer_session(admin_token)
    if args.step in ("finish", "all"):
        if not args.queue or not args.experiment_id:
            parser.error("finish needs --queue and --experiment-id")
        report("finish", finish(args.queue, args.dataset, args.experiment_id))
    return results


if __name__ == "__main__":
    main()
