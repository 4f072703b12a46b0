"""Deterministic demo data: experiments, traces with span trees, people and their feedback.

Everything is derived from a fixed random seed and ids are stable, so running it again
finds what exists and adds nothing. Traces and spans are written directly (the demo is not
an MLflow payload); assessments go through annotation.services so their history is real.
"""

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role, set_role
from traces import ingest, otel_conventions
from traces.models import Experiment, Run, Span, Trace, now_ms

from . import (
    datasets,
    judge_report,
    quality,
    queues,
    review_queues,
    services,
    session_items,
    span_questions,
)
from . import demo_content as content
from .models import Assessment, EvaluationDataset, LabelSchema, Queue, SourceType
from .schema_cache import schemas_changed

DAY_MS = 24 * 3600 * 1000
EXPERIMENTS = ["bookshop-support-prod", "bookshop-support-staging", "returns-agent-eval"]
CHAT_EXPERIMENT = "bookshop-support-staging"
TRACE_COUNT = 300
SESSION_COUNT = 60
BIG_TRACE_SPANS = 2000
DEMO_QUEUE = "Returns agent spot check"
SPAN_QUEUE = "Retrieval relevance"
SESSION_QUEUE = "Support conversations"
QUEUE_REQUIRED = ["helpful", "policy_followed"]
LONG_RESPONSE = 220  # characters; longer answers fail the length check
JUDGE_DATASET = "helpful: where judge-helpful-lenient is wrong"
LENIENT_FROM = 110  # characters of response from which the lenient demo judge passes all

SCHEMAS = [
    {
        "name": "helpful",
        "title": "Helpful?",
        "value_type": "boolean",
        "applies_to": "trace",
        "instructions": "Thumbs up when the answer resolves the customer's question correctly.",
    },
    {
        "name": "rating",
        "title": "Overall quality",
        "value_type": "numeric",
        "min_value": 1,
        "max_value": 5,
        "step": 1,
        "applies_to": "trace",
        "instructions": "1 = harmful or wrong, 3 = acceptable, 5 = exemplary.",
    },
    {
        "name": "issue_category",
        "title": "Main issue",
        "value_type": "categorical",
        "options": content.ISSUE_CATEGORIES,
        "applies_to": "trace",
        "instructions": "The most important problem with the answer, or 'none'.",
    },
    {
        "name": "retrieval_relevant",
        "title": "Retrieved documents relevant?",
        "value_type": "boolean",
        "applies_to": "span",
        "span_types": ["RETRIEVER"],
        "instructions": "Do the retrieved documents contain what is needed to answer?",
    },
    {
        "name": "policy_followed",
        "title": "Returns policy followed?",
        "value_type": "boolean",
        "applies_to": "trace",
        "experiments": ["returns-agent-eval"],
        "instructions": "Thumbs up when the agent applied the 30-day returns policy correctly.",
    },
    {
        "name": "conversation_resolved",
        "title": "Conversation resolved?",
        "value_type": "boolean",
        "applies_to": "trace",
        "instructions": "Thumbs up when, by the last turn, the customer has what they came for.",
    },
    {
        "name": "expected_answer",
        "title": "Expected answer",
        "kind": "expectation",
        "value_type": "text",
        "applies_to": "trace",
        "one_per_annotator": False,
        "instructions": "The answer a careful support agent would give.",
    },
]

PEOPLE = [
    ("admin", Role.ADMIN, True),
    ("rita", Role.REVIEWER, False),
    ("ravi", Role.REVIEWER, False),
    ("rosa", Role.REVIEWER, False),
    ("vera", Role.VIEWER, False),
]


@dataclass
class SeedReport:
    created: dict = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        self.created[kind] = self.created.get(kind, 0) + count


def seed(*, password: str) -> SeedReport:
    report = SeedReport()
    people = _people(password, report)
    experiments = _experiments(report)
    _schemas(report)
    rng = random.Random(20261126)  # noqa: S311 - demo data, not security
    start = now_ms() - 14 * DAY_MS
    sessions = [(rng.choice(content.USERS), f"sess-{n:03d}") for n in range(SESSION_COUNT)]
    for n in range(TRACE_COUNT):
        user, session = sessions[n % SESSION_COUNT]
        experiment = experiments[0] if n % 5 else experiments[1 + n % 2]
        request_time = start + n * (14 * DAY_MS // TRACE_COUNT) + rng.randint(0, 3_600_000)
        with transaction.atomic():
            trace = _trace(rng, n, experiment, user, session, request_time, report)
            if trace is not None:
                _assessments(rng, trace, people, report)
    _big_trace(experiments[2], start + 13 * DAY_MS, report)
    _control_queue(experiments[0], people, report)
    _queue(experiments[2], people, report)
    _span_queue(experiments[0], people, report)
    _session_queue(experiments[0], people, report)
    _evaluation(experiments[0], people, report)
    _judge_dataset(experiments[0], people, report)
    return report


def _evaluation(experiment: Experiment, people: dict, report: SeedReport) -> None:
    """What an MLflow user's evaluation script leaves: two evaluation runs to compare, a
    pass/fail schema and a review queue made through the MLflow API, and a dataset of the
    traces reviewers gave an expected answer."""
    traces = list(experiment.traces.order_by("request_time", "trace_id")[:40])
    for name, exact, model, chunk in (
        ("baseline-eval", 0.62, "small", traces[:20]),
        ("candidate-eval", 0.71, "large", traces[20:]),
    ):
        run_id = _stable_hex("demo-run", name)
        if Run.objects.filter(run_id=run_id).exists():
            continue
        with transaction.atomic():
            run = Run.objects.create(
                run_id=run_id, experiment=experiment, name=name, user_id="admin",
                status=Run.Status.FINISHED, start_time=now_ms(), end_time=now_ms(),
                params={"model": model}, tags={"mlflow.runType": "genai_evaluate"},
                metrics={
                    "exact/mean": {"value": exact, "timestamp": now_ms(), "step": 0},
                    "length/mean": {"value": 180 + len(model), "timestamp": now_ms(), "step": 0},
                },
            )  # fmt: skip
            ingest.link_to_run(
                [t.trace_id for t in chunk], run_id=run.run_id, experiment_id=experiment.pk
            )
        report.add("runs")
    schema, created = LabelSchema.objects.get_or_create(
        name="resolved",
        defaults={
            "value_type": LabelSchema.ValueType.BOOLEAN, "applies_to": LabelSchema.AppliesTo.TRACE,
            "positive_label": "Resolved", "negative_label": "Unresolved",
            "instructions": "Did the answer resolve the customer's problem?",
        },
    )  # fmt: skip
    if created:
        schema.experiments.set([experiment])
        schemas_changed()
    report.add("label schemas", int(created))
    if not Queue.objects.filter(experiment=experiment, name="Evaluation triage").exists():
        queue = review_queues.create_custom(
            experiment=experiment, name="Evaluation triage", users=["rita", "ravi"],
            schema_ids=[schema.schema_id], owner=people["admin"],
        )  # fmt: skip
        review_queues.add_items(queue=queue, item_ids=[t.trace_id for t in traces[:8]])
        report.add("queues")
    if not EvaluationDataset.objects.filter(name="support gold answers").exists():
        answered = experiment.traces.filter(
            assessments__name="expected_answer", assessments__deleted_at__isnull=True
        ).distinct()[:50]
        dataset = datasets.create_dataset(
            name="support gold answers", experiments=[experiment], tags={"mlflow.user": "admin"}
        )
        datasets.merge_records(dataset=dataset, records=datasets.records_from_traces(answered))
        report.add("datasets")


def _judge_dataset(experiment: Experiment, people: dict, report: SeedReport) -> None:
    """The lenient judge's disagreements with gold as a dataset, made as the judge page's
    "Add to dataset" action makes it: the traces' inputs, gold as expectations."""
    if EvaluationDataset.objects.filter(name=JUDGE_DATASET).exists():
        return
    key = judge_report.JudgeKey("helpful", "judge-helpful-lenient")
    [found] = judge_report.build(experiment, user=people["admin"], key=key)
    traces = Trace.objects.in_bulk([pair.trace_pk for pair in found.disagreeing])
    datasets.add_traces(
        dataset=None,
        name=JUDGE_DATASET,
        traces=traces.values(),
        experiments=[experiment],
        expectations=judge_report.gold_expectations(found),
        user="admin",
    )
    report.add("datasets")


def _stable_hex(*parts, length: int = 32) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def _people(password: str, report: SeedReport) -> dict:
    User = get_user_model()
    people = {}
    for username, role, is_superuser in PEOPLE:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "is_staff": is_superuser},
        )
        if created:
            user.set_password(password)
            user.is_superuser = is_superuser
            user.save()
            set_role(user, role)
            report.add("users")
        people[username] = user
    return people


def _schemas(report: SeedReport) -> None:
    for spec in SCHEMAS:
        spec = dict(spec)
        experiments = spec.pop("experiments", [])
        schema, created = LabelSchema.objects.get_or_create(name=spec.pop("name"), defaults=spec)
        if created:
            schema.experiments.set(Experiment.objects.filter(name__in=experiments))
            schemas_changed()
        report.add("label schemas", int(created))


def _queue(experiment, people, report: SeedReport) -> None:
    """A blind queue on the returns agent: two answers per trace, the category optional."""
    if Queue.objects.filter(name=DEMO_QUEUE).exists():
        return
    schemas = LabelSchema.objects.filter(name__in=QUEUE_REQUIRED + ["issue_category"])
    queues.create_queue(
        name=DEMO_QUEUE,
        description="Did the returns agent help, and did it follow the returns policy?",
        traces=Trace.objects.filter(experiment=experiment).order_by("request_time")[:12],
        schemas=schemas,
        required_schemas=[s for s in schemas if s.name in QUEUE_REQUIRED],
        annotators=[people["rita"], people["ravi"], people["rosa"]],
        overlap=2,
        created_by=people["admin"],
    )
    report.add("queues")


def _span_queue(experiment, people, report: SeedReport) -> None:
    """A queue asking "Retrieved documents relevant?" of every RETRIEVER span, half labeled
    by two reviewers who disagree on one span, to decide on its Disagreements page."""
    if Queue.objects.filter(name=SPAN_QUEUE).exists():
        return
    traces = Trace.objects.filter(
        experiment=experiment, spans__span_type="RETRIEVER", state=Trace.State.OK
    ).distinct()
    queue = queues.create_queue(
        name=SPAN_QUEUE,
        description="Did each retrieval step find what the answer needed?",
        traces=traces.order_by("-request_time")[:8],
        schemas=[],
        span_targets=[
            span_questions.SpanTarget(
                LabelSchema.objects.get(name="retrieval_relevant"), span_type="RETRIEVER"
            )
        ],
        annotators=[people["rita"], people["ravi"]],
        overlap=2,
        control_rate=0,
        created_by=people["admin"],
    )
    for _ in range(4):
        for name in ("rita", "ravi"):
            person = people[name]
            turn = queues.next_assignment(queue=queue, user=person)
            asked = span_questions.asked_spans(turn.item)
            disagrees = name == "ravi" and turn.item.position == 2
            spans = {
                (a.span.span_id, "retrieval_relevant"): not (disagrees and n == 0)
                for n, a in enumerate(asked)
            }
            queues.submit(assignment=turn, values={}, span_values=spans, actor=person)
            report.add("assessments", len(spans))
    report.add("queues")


def _session_queue(experiment, people, report: SeedReport) -> None:
    """A blind queue of whole conversations: rita and ravi each answer some, and differ on
    one, so the queue page shows agreement and a disagreement to decide."""
    if Queue.objects.filter(name=SESSION_QUEUE).exists():
        return
    traces = Trace.objects.filter(experiment=experiment).order_by("request_time", "trace_id")
    queue = session_items.create_session_queue(
        name=SESSION_QUEUE,
        description="Read each conversation to its end: was the customer's problem solved?",
        session_ids=session_items.sessions_of(traces, 6),
        schemas=LabelSchema.objects.filter(name="conversation_resolved"),
        annotators=[people["rita"], people["ravi"]],
        overlap=2,
        created_by=people["admin"],
    )
    for name, answers in (("rita", [True, True, False, True]), ("ravi", [True, False, False])):
        for value in answers:
            turn = queues.next_assignment(queue=queue, user=people[name])
            queues.submit(
                assignment=turn, values={"conversation_resolved": value}, actor=people[name]
            )
            report.add("assessments")
    report.add("queues")


def _experiments(report: SeedReport) -> list[Experiment]:
    experiments = []
    for name in EXPERIMENTS:
        experiment, created = Experiment.objects.get_or_create(
            name=name, defaults={"tags": {"team": "support", "demo": "true"}}
        )
        report.add("experiments", int(created))
        experiments.append(experiment)
    return experiments


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        order=f"IW-{rng.randint(10000, 99999)}",
        days=rng.randint(2, 40),
        country=rng.choice(content.COUNTRIES),
        device=rng.choice(content.DEVICES),
        title=rng.choice(content.TITLES),
    )


class _SpanBuilder:
    """Lays spans out in time, depth first, as an agent framework would record them."""

    def __init__(self, trace: Trace, start_ns: int):
        self.trace = trace
        self.clock = start_ns
        self.spans: list[Span] = []

    def add(self, name, span_type, parent, inputs, outputs, ms, attributes=None, error=None):
        span_id = _stable_hex(self.trace.trace_id, len(self.spans), length=16)
        start = self.clock
        self.clock += int(ms * 1_000_000)
        attributes = {"mlflow.spanType": span_type, **(attributes or {})}
        span = Span(
            trace=self.trace,
            span_id=span_id,
            parent_span_id=parent.span_id if parent else None,
            name=name,
            span_type=span_type,
            start_time_ns=start,
            end_time_ns=self.clock,
            status=Span.Status.ERROR if error else Span.Status.OK,
            status_message=f"{error[0]}: {error[1]}" if error else "",
            inputs=inputs,
            outputs=outputs,
            attributes=otel_conventions.translate(attributes, inputs, outputs)[0],
            events=_exception_events(error, self.clock) if error else [],
        )
        self.spans.append(span)
        return span

    def finish(self) -> None:
        """Stretch every parent span to cover its children (children come after parents)."""
        by_id = {span.span_id: span for span in self.spans}
        for span in reversed(self.spans):
            parent = by_id.get(span.parent_span_id)
            if parent is not None:
                parent.end_time_ns = max(parent.end_time_ns, span.end_time_ns)


def _exception_events(error, at_ns):
    kind, message = error
    stack = (
        "Traceback (most recent call last):\n"
        '  File "agent/tools.py", line 88, in lookup_order\n'
        "    response = client.get(f'/orders/{order_id}', timeout=10)\n"
        f"{kind}: {message}"
    )
    return [
        {
            "name": "exception",
            "timestamp_ns": at_ns,
            "attributes": {
                "exception.type": kind,
                "exception.message": message,
                "exception.stacktrace": stack,
            },
        }
    ]


def _trace(rng, n, experiment, user, session, request_time, report) -> Trace | None:
    trace_id = f"tr-{_stable_hex('demo-trace', n)}"
    if Trace.objects.filter(trace_id=trace_id).exists():
        return None
    template, topic = rng.choice(content.QUESTIONS)
    question = _fill(template, rng)
    answer = _fill(content.ANSWERS[topic], rng)
    failed = rng.random() < 0.05
    trace = Trace(
        trace_id=trace_id,
        experiment=experiment,
        request_time=request_time,
        state=Trace.State.ERROR if failed else Trace.State.OK,
        client_request_id=f"req-{n:05d}",
        tags={"mlflow.traceName": "support_agent", "channel": rng.choice(["web", "app", "email"])},
        trace_metadata={
            "mlflow.trace.user": user,
            "mlflow.trace.session": session,
            "app.version": rng.choice(["1.4.2", "1.5.0"]),
        },
    )
    trace.copy_indexed_metadata()
    builder = _SpanBuilder(trace, request_time * 1_000_000)
    depth = rng.randint(2, 6)
    model = rng.choice(content.MODELS)
    inputs, outputs = _root_io(experiment, question, answer)
    root = builder.add("support_agent", "AGENT", None, inputs, None, 2)
    _agent_steps(builder, rng, root, topic, question, answer, model, depth, failed)
    builder.finish()
    root.outputs = None if failed else outputs
    if failed:
        root.status = Span.Status.ERROR
        root.status_message = "Tool call failed"
    # The staging app is a chat app whose client escapes non-ASCII, as MLflow's does by default.
    ascii_only = experiment.name == CHAT_EXPERIMENT
    trace.request_preview = json.dumps(inputs, ensure_ascii=ascii_only)
    trace.response_preview = "" if failed else json.dumps(outputs, ensure_ascii=ascii_only)
    trace.execution_duration = (builder.clock - root.start_time_ns) // 1_000_000
    _count_spans(trace, builder.spans)
    trace.save()
    Span.objects.bulk_create(builder.spans)
    report.add("traces")
    report.add("spans", len(builder.spans))
    return trace


def _root_io(experiment, question: str, answer: str) -> tuple[dict, dict]:
    """The support agent's inputs and outputs: a question and an answer, or a chat turn."""
    if experiment.name != CHAT_EXPERIMENT:
        return {"question": question}, {"answer": answer}
    messages = [
        {"role": "system", "content": "You are the bookshop’s support agent."},
        {"role": "user", "content": question},
    ]
    reply = {"role": "assistant", "content": answer}
    return {"messages": messages}, {"choices": [{"index": 0, "message": reply}]}


def _agent_steps(builder, rng, parent, topic, question, answer, model, depth, failed):
    """A chain of retrieval, tool use and generation, nested ``depth`` levels deep."""
    docs = [
        {
            "id": _stable_hex(builder.trace.trace_id, path, length=8),
            "page_content": f"Policy excerpt from {path}: customers may …",
            "metadata": {"doc_uri": f"https://help.inkwell.example/{path}", "score": 0.9 - i / 10},
        }
        for i, path in enumerate(content.POLICY_DOCS[topic])
    ]
    plan = builder.add("plan", "CHAIN", parent, {"question": question}, {"topic": topic}, 3)
    builder.add(
        "retrieve_policies", "RETRIEVER", plan, {"query": question}, docs, rng.randint(40, 180)
    )
    current = plan
    for level in range(max(depth - 2, 0)):
        current = builder.add(
            f"reason_step_{level + 1}", "CHAIN", current, {"topic": topic}, None, 1
        )
    error = rng.choice(content.TOOL_ERRORS) if failed else None
    builder.add(
        "lookup_order",
        "TOOL",
        current,
        {"customer_question": question},
        None if failed else {"found": True, "status": "shipped"},
        rng.randint(20, 400),
        attributes={"tool.timeout_s": 10},
        error=error,
    )
    if not failed:
        messages = [
            {"role": "system", "content": content.SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ]
        builder.add(
            "chat_completion",
            "LLM",
            current,
            {"model": model, "messages": messages, "temperature": 0.2},
            {"choices": [{"message": {"role": "assistant", "content": answer}}]},
            rng.randint(300, 2500),
            # OpenInference's token counts, read as MLflow's token usage like any OTLP span's.
            attributes={
                "llm.model_name": model,
                "llm.token_count.prompt": rng.randint(200, 900),
                "llm.token_count.completion": len(answer) // 4,
            },
        )


def _big_trace(experiment, request_time, report) -> None:
    """One long agent run with BIG_TRACE_SPANS spans, to show the tree loads on demand."""
    trace_id = f"tr-{_stable_hex('demo-big-trace')}"
    if Trace.objects.filter(trace_id=trace_id).exists():
        return
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    trace = Trace(
        trace_id=trace_id,
        experiment=experiment,
        request_time=request_time,
        state=Trace.State.OK,
        client_request_id="req-big-run",
        tags={"mlflow.traceName": "catalogue_audit_agent"},
        trace_metadata={"mlflow.trace.user": "ops-bot", "mlflow.trace.session": "sess-audit"},
        request_preview=json.dumps({"task": "Audit availability of 500 catalogue titles"}),
        response_preview=json.dumps({"checked": 500, "missing": 12}),
    )
    trace.copy_indexed_metadata()
    builder = _SpanBuilder(trace, request_time * 1_000_000)
    root = builder.add("catalogue_audit_agent", "AGENT", None, {"titles": 500}, None, 1)
    for i in range((BIG_TRACE_SPANS - 4) // 4):
        step = builder.add(f"check_title_{i + 1}", "CHAIN", root, {"index": i}, None, 1)
        builder.add("search_inventory", "RETRIEVER", step, {"isbn": f"978-{i:07d}"}, [], 5)
        builder.add("stock_api", "TOOL", step, {"isbn": f"978-{i:07d}"}, {"stock": i % 7}, 3)
        builder.add(
            "summarise",
            "LLM",
            step,
            {"messages": [{"role": "user", "content": f"Summarise stock for item {i}"}]},
            {"choices": [{"message": {"role": "assistant", "content": "In stock."}}]},
            rng.randint(5, 30),
        )
    report_step = builder.add("write_report", "CHAIN", root, {"missing": 12}, None, 2)
    builder.add("format_table", "TOOL", report_step, {"rows": 12}, {"ok": True}, 4)
    builder.add("send_summary", "TOOL", report_step, {"to": "ops"}, {"sent": True}, 9)
    builder.finish()
    root.outputs = {"checked": 500, "missing": 12}
    trace.execution_duration = (builder.clock - root.start_time_ns) // 1_000_000
    _count_spans(trace, builder.spans)
    with transaction.atomic():
        trace.save()
        Span.objects.bulk_create(builder.spans, batch_size=500)
    report.add("traces")
    report.add("spans", len(builder.spans))


def _count_spans(trace: Trace, spans: list[Span]) -> None:
    """What traces.ingest keeps for traces it stores: span count and size, within limits."""
    for span in spans:
        span.size_bytes = ingest.span_size(span)
    trace.span_count = len(spans)
    trace.span_bytes = sum(span.size_bytes for span in spans)


def _assessments(rng, trace: Trace, people: dict, report: SeedReport) -> None:
    """Judges and code checks score most traces; reviewers label about a third by hand."""
    ok = trace.state == Trace.State.OK
    good = ok and rng.random() < 0.7
    if rng.random() < 0.8:
        judge_error = rng.random() < 0.06
        services.log_feedback(
            trace=trace,
            name="groundedness",
            # The judge agrees with the truth four times in five.
            value=None if judge_error else (good if rng.random() < 0.8 else not good),
            rationale="" if judge_error else "Checked each claim against the retrieved policies.",
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-gpt-4o",
            error={
                "error_code": "RATE_LIMIT",
                "error_message": "429 Too Many Requests from judge endpoint",
                "stack_trace": "Traceback (most recent call last): ... RateLimitError",
            }
            if judge_error
            else None,
        )
        report.add("assessments")
    services.log_feedback(
        trace=trace,
        name="answer_length_ok",
        value=len(trace.response_preview) < LONG_RESPONSE,
        source_type=SourceType.CODE,
        source_id="checks.length",
    )
    report.add("assessments")
    if not ok:
        # A judge's issue scan links failed traces to the issue they show.
        services.log_issue(
            trace=trace,
            issue_id="iss-order-lookup-timeouts",
            issue_name="Order lookup times out",
            rationale="The order service did not answer within 10 s.",
            source_type=SourceType.LLM_JUDGE,
            source_id="issue-scan",
        )
        report.add("assessments")
    reviewed = rng.random() < 0.35
    if reviewed:
        _human_review(rng, trace, people, good, report)
    _helpful_judges(trace, people, good, reviewed, report)


def _helpful_judges(trace, people, good, reviewed, report) -> None:
    """Two judges of "helpful": a careful one (right 19 times in 20, a second prompt
    version half-way) and a lenient one that passes every long answer. A second reviewer
    labels most reviewed traces, two reviewers some others, so agreeing people make the gold
    the judges are measured against. Its own random stream keeps the rest of the demo as it was."""
    rng = random.Random(trace.trace_id)  # noqa: S311 - demo data, not security
    long = len(trace.response_preview) >= LENIENT_FROM
    careful = good if rng.random() < 0.95 else not good
    lenient = True if long else (good if rng.random() < 0.95 else not good)
    version = "v1" if trace.request_time < now_ms() - 7 * DAY_MS else "v2"
    for source_id, value, judge_version in [
        ("judge-helpful-careful", careful, version),
        ("judge-helpful-lenient", lenient, "v1"),
    ]:
        services.log_feedback(
            trace=trace,
            name="helpful",
            value=value,
            rationale="Checked the answer against the question and the cited policy.",
            source_type=SourceType.LLM_JUDGE,
            source_id=source_id,
            metadata={"judge_version": judge_version},
            create_time=trace.request_time + 60_000,
        )
    report.add("assessments", 2)
    if rng.random() < (0.2 if reviewed else 0.7):
        return
    first = Assessment.objects.filter(trace=trace, name="helpful", source_type=SourceType.HUMAN)
    answered = set(first.values_list("annotator__username", flat=True))
    others = [name for name in ("rita", "ravi", "rosa") if name not in answered]
    for name in rng.sample(others, 1 if reviewed else 2):
        services.log_feedback(
            trace=trace,
            name="helpful",
            value=good if rng.random() < 0.95 else not good,
            rationale=rng.choice(content.RATIONALES[good]),
            source_id=name,
            actor=people[name],
        )
        report.add("assessments")


def _human_review(rng, trace, people, good, report) -> None:
    reviewer = people[rng.choice(["rita", "ravi", "rosa"])]
    name = reviewer.get_username()
    helpful = services.log_feedback(
        trace=trace,
        name="helpful",
        value=good,
        rationale=rng.choice(content.RATIONALES[good]),
        source_id=name,
        actor=reviewer,
    )
    rating = services.log_feedback(
        trace=trace,
        name="rating",
        value=rng.randint(4, 5) if good else rng.randint(1, 3),
        source_id=name,
        actor=reviewer,
    )
    services.log_feedback(
        trace=trace,
        name="issue_category",
        value="none" if good else rng.choice(content.ISSUE_CATEGORIES[1:]),
        source_id=name,
        actor=reviewer,
    )
    report.add("assessments", 3)
    retriever = trace.spans.filter(span_type="RETRIEVER").only("span_id").first()
    if retriever and rng.random() < 0.5:
        services.log_feedback(
            trace=trace,
            name="retrieval_relevant",
            value=rng.random() < 0.8,
            span_id=retriever.span_id,
            source_id=name,
            actor=reviewer,
        )
        report.add("assessments")
    if rng.random() < 0.3:
        # Reviewers change their minds: these carry several revisions of history.
        for version, value in enumerate(rng.sample([1, 2, 3, 4, 5], 3), start=1):
            services.update_assessment(
                assessment_id=rating.assessment_id,
                value=value,
                expected_version=version,
                actor=reviewer,
            )
    if not good and rng.random() < 0.4:
        services.log_expectation(
            trace=trace,
            name="expected_answer",
            value="Apologise, cite the policy section, and give the exact next step.",
            source_id=name,
            actor=reviewer,
        )
        report.add("assessments")
    judge = Assessment.objects.live().filter(trace=trace, name="groundedness", valid=True).first()
    if judge and judge.value is not None and judge.value != good and rng.random() < 0.6:
        services.override_feedback(
            assessment_id=judge.assessment_id,
            value=good,
            rationale="The judge misread the policy; corrected by hand.",
            source_id=name,
            actor=reviewer,
        )
        report.add("assessments")
    if rng.random() < 0.05:
        services.delete_assessment(assessment_id=helpful.assessment_id, actor=reviewer)


CONTROL_QUEUE = "Weekly quality check"
# Seconds of active time each reviewer spends per item, and how often they get a control
# item's known answer right: rosa is quick and careless, which the queue page flags.
REVIEWER_PACE = {"rita": (48, 1.0), "ravi": (31, 0.9), "rosa": (12, 0.4)}


def _control_queue(experiment, people, report) -> None:
    """A finished queue with control items: pace and accuracy per reviewer on its page."""
    if queues.Queue.objects.filter(name=CONTROL_QUEUE).exists():
        return
    rng = random.Random(20261202)  # noqa: S311 - demo data, not security
    unlabeled = (
        Trace.objects.filter(experiment=experiment, state=Trace.State.OK)
        .exclude(assessments__source_type=SourceType.HUMAN)
        .order_by("request_time")[:16]
    )
    reviewers = [people[name] for name in REVIEWER_PACE]
    queue = queues.create_queue(
        name=CONTROL_QUEUE,
        description="Helpfulness and quality of this week's answers, with control items.",
        traces=unlabeled,
        schemas=LabelSchema.objects.filter(name__in=["helpful", "rating"]),
        annotators=reviewers,
        overlap=1,
        control_rate=30,
        accuracy_threshold=0.7,
        created_by=people["admin"],
    )
    known = {"helpful": True, "rating": 5}
    for item in queue.items.filter(position__in=[2, 5, 8, 11]):
        quality.set_control_answers(item=item, answers=known, actor=people["admin"])
    moments = {person.pk: timezone.now() - timedelta(days=1) for person in reviewers}
    working = list(reviewers)
    while working:  # the reviewers take turns, as people working side by side would
        for person in list(working):
            turn = queues.next_assignment(queue=queue, user=person)
            if turn is None:
                working.remove(person)
                continue
            seconds, accuracy = REVIEWER_PACE[person.get_username()]
            moment = moments[person.pk]
            # Shown, a heartbeat every 15 s, then the answer, as the item page reports them.
            for offset in [*range(0, seconds, 15), seconds]:
                quality.record_activity(turn, now=moment + timedelta(seconds=offset))
                turn.refresh_from_db()
            moments[person.pk] = moment + timedelta(seconds=seconds + rng.randint(5, 40))
            if person.get_username() == "ravi" and turn.item.position == 7:
                queues.skip(assignment=turn, reason="The answer is in German.", actor=person)
                continue
            right = not turn.item.is_control or rng.random() < accuracy
            values = {"helpful": True, "rating": 5} if right else {"helpful": False, "rating": 2}
            queues.submit(assignment=turn, values=values, actor=person)
            report.add("assessments", 2)
