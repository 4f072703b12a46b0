"""A generated corpus of hostile requests sent to every API endpoint.

Each endpoint starts from a valid request; every field of it in turn is replaced by each
hostile JSON fragment (10,000-deep nesting, wrong types, numbers beyond doubles and int64,
NUL, lone surrogates, unicode digits, broken regexes and page tokens, huge strings, timestamps
outside 1970-9999), and whole bodies are replaced by broken ones (not JSON, text/plain,
truncated gzip). No answer may be a 5xx, every error is MLflow's JSON shape, and afterwards
every stored trace still reads back through traces/get, batchGet, search, traces.json and
the review page.

The requests run in autocommit (``transaction=True``), as in production: PostgreSQL would
otherwise abort the test's transaction at the first refused statement.
"""

import base64
import copy
import gzip
import json
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from accounts.tokens import create_token
from annotation import services
from tests.api.test_validation import artifact_span
from tests.factories import make_admin, make_experiment
from traces import ingest
from traces.models import Trace
from traces.search import parse_order_by

pytestmark = pytest.mark.django_db(transaction=True)

TRACE_HEX = "5f3c0e2b9a8d4c7e1f6a2b3c4d5e6f70"
TRACE_ID = f"tr-{TRACE_HEX}"
ROOT = "1a2b3c4d5e6f7081"
DEEP = 10_000


def _token(payload) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode()


_ORDER = [key.label for key in parse_order_by(None)]
PAGE_TOKENS = [
    "not base64!",
    _token(b"not json"),
    _token(b"[" * DEEP + b"]" * DEEP),
    _token([1, 2]),
    _token({"order": _ORDER, "after": ["x", {"a": 1}]}),
    _token({"order": _ORDER, "after": [2**70, "tr-x"]}),
    _token({"order": _ORDER, "after": [True, None]}),
    _token({"order": _ORDER, "after": ["not a time", "tr-x"]}),
    _token({"order": _ORDER, "after": [1, "a\x00b"]}),
    _token({"after_id": "²"}),
    _token({"after_id": 2**70}),
    _token({"after_id": [1]}),
]
FILTERS = [
    "attributes.name RLIKE '('",
    "tags.env RLIKE '(?P<n>a)'",
    "attributes.name RLIKE 'a++'",
    "attributes.timestamp_ms > 1" + "0" * 400,
    "attributes.timestamp_ms > 1e400",
    "attributes.execution_time_ms < 99999999999999999999",
    "feedback.quality > 1e308",
    "name = '" + "x" * 20_000 + "'",
    "name LIKE '%'" + " AND name LIKE '%'" * 200,
    "(((",
    "attributes.name = '\u00b2'",
]
# Raw JSON text, so that numbers and escapes reach the server exactly as written.
FRAGMENTS = [
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    "[" * 100 + "]" * 100,
    "1" + "0" * 400,
    "-" + "9" * 400,
    "1e400",
    str(2**64),
    str(-(2**63) - 1),
    "-1",
    "0",
    "1.5",
    "NaN",
    "Infinity",
    "true",
    "null",
    "[]",
    "{}",
    '[1, "a", null]',
    '{"x": {"y": []}, "\\u0000": 1}',
    '"a\\u0000b"',
    '"\\ud800"',
    '"x\\udfffy"',
    '"\u00b2"',
    '"\u0661\u0662\u0663"',
    '"' + "9" * 30 + '"',
    '"' + "x" * 100_000 + '"',
    '"' + "\u00e9" * 12_000 + '"',
    '""',
    '"-1"',
    '"0001-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59.999Z"',
    '"2026-13-45T00:00:00Z"',
    '"1e308s"',
    '"-1s"',
    '"NaNs"',
    '"' + "1" + "0" * 400 + '"',
    '"' + "[" * 2000 + "]" * 2000 + '"',
    *(json.dumps(f) for f in FILTERS),
    *(json.dumps(t) for t in PAGE_TOKENS),
]
QUERY_VALUES = [
    "\u00b2",
    "\u0661\u0662",
    "%00",
    "a%00b",
    "%ED%A0%80",
    "9" * 30,
    "-1",
    "x" * 10_000,
    "True",
    "",
    "tr-" + "\u00b2" * 32,
    *PAGE_TOKENS,
]
PATH_SEGMENTS = ["\u00b2", "\u0661", "9" * 30, "-1", "x" * 5000, "%00", "tr-" + "\u00b2" * 32]
BAD_BODIES = [
    (b"not json", "application/json", None),
    (b"[1, 2]", "application/json", None),
    (b'"text"', "application/json", None),
    (b"[" * DEEP + b"]" * DEEP, "application/json", None),
    (b"\xff\xfe\x00", "application/json", None),
    (b'{"a": 1}', "text/plain", None),
    (b'{"a": 1}', "application/x-www-form-urlencoded", None),
    (gzip.compress(b'{"a": 1}')[:-6], "application/json", "gzip"),
    (b"not gzip", "application/json", "gzip"),
    (b'{"a": 1}', "application/json", "br"),
]


class Endpoint:
    def __init__(self, method, path, body=None, query=None, fields=()):
        self.method, self.path, self.body, self.query = method, path, body, query
        self.fields = fields  # paths into body (lists of keys and indexes) to replace


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _hostile_bodies(body: dict, fields):
    """The valid body with one field replaced by each fragment, as raw JSON text."""
    for path in fields:
        for fragment in FRAGMENTS:
            mutated = copy.deepcopy(body)
            _set(mutated, path, "@@HOSTILE@@")
            yield json.dumps(mutated).replace('"@@HOSTILE@@"', fragment).encode()


class Fuzzer:
    def __init__(self, client: Client):
        self.client = client
        self.requests = 0
        self.failures = []

    def send(self, method, path, body=b"", content_type="application/json", **headers):
        response = self.client.generic(
            method, path, body, content_type=content_type, headers=headers
        )
        self.requests += 1
        problem = None
        if response.status_code >= 500:
            problem = "5xx"
        elif response.status_code >= 400 and path.startswith("/api/"):
            try:
                payload = json.loads(response.content)
                assert set(payload) >= {"error_code", "message"}
            except (ValueError, AssertionError, TypeError):
                problem = "error not in MLflow's shape"
        if problem:
            error = repr(response.exc_info[1])[:200] if response.exc_info else ""
            self.failures.append((problem, response.status_code, method, path[:80], error))
        return response

    def endpoint(self, endpoint: Endpoint):
        if endpoint.query is not None:
            for name in endpoint.query:
                for value in QUERY_VALUES:
                    query = {**endpoint.query, name: value}
                    raw = "&".join(
                        f"{k}={v if v.startswith('%') or '%' in v else quote(v)}"
                        for k, v in query.items()
                    )
                    self.send(endpoint.method, f"{endpoint.path}?{raw}")
            return
        for body in _hostile_bodies(endpoint.body, endpoint.fields):
            self.send(endpoint.method, endpoint.path, body)
        for body, content_type, encoding in BAD_BODIES:
            headers = {"Content-Encoding": encoding} if encoding else {}
            self.send(endpoint.method, endpoint.path, body, content_type, **headers)


def _trace_info(experiment_id: str) -> dict:
    return {
        "trace_id": TRACE_ID,
        "client_request_id": "fuzz",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": "2026-11-24T11:09:19.694Z",
        "execution_duration": "0.032s",
        "state": "OK",
        "trace_metadata": {"mlflow.trace.user": "alice"},
        "tags": {"mlflow.traceName": "root", "env": "fuzz"},
        "request_preview": '{"q": 1}',
        "assessments": [],
    }


def _endpoints(experiment_id: str, scratch_id: str, assessment_id: str) -> list[Endpoint]:
    v2, v3 = "/api/2.0/mlflow", "/api/3.0/mlflow"
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/{TRACE_ID}"
    info = _trace_info(experiment_id)
    feedback = {
        "assessment": {
            "assessment_name": "quality",
            "trace_id": TRACE_ID,
            "source": {"source_type": "HUMAN", "source_id": "fuzz"},
            "feedback": {"value": 4, "error": {"error_code": "E"}},
            "rationale": "r",
            "metadata": {"k": "v"},
            "span_id": ROOT,
            "create_time": "2026-11-24T11:09:20.000Z",
        }
    }
    expectation = {
        "assessment": {
            "assessment_name": "answer",
            "source": {"source_type": "HUMAN"},
            "expectation": {"serialized_value": {"value": "[1]"}},
        }
    }
    override = {"assessment": {**feedback["assessment"], "overrides": assessment_id}}
    update = {
        "assessment": {"feedback": {"value": 3}, "rationale": "x", "metadata": {"a": "b"}},
        "update_mask": "feedback,rationale,metadata",
    }
    search = {
        "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}}],
        "filter": "attributes.status = 'OK'",
        "max_results": 10,
        "order_by": ["timestamp_ms DESC"],
        "page_token": "",
    }
    search["locations"][0]["mlflow_experiment"]["experiment_id"] = experiment_id
    a = ["assessment"]
    assessment_path = f"{v3}/traces/{TRACE_ID}/assessments/{assessment_id}"
    spans = {"spans": [_artifact_span()]}
    s = ["spans", 0]
    return [
        Endpoint("GET", f"{v2}/experiments/get", query={"experiment_id": experiment_id}),
        Endpoint("GET", f"{v2}/experiments/get-by-name", query={"experiment_name": "fuzz"}),
        Endpoint(
            "POST",
            f"{v2}/experiments/create",
            body={"name": "fuzz-new", "tags": [{"key": "k", "value": "v"}]},
            fields=[["name"], ["tags"], ["tags", 0], ["tags", 0, "key"], ["tags", 0, "value"]],
        ),
        Endpoint(
            "POST",
            f"{v2}/experiments/search",
            body={"max_results": 10, "filter": "name LIKE 'f%'", "page_token": ""},
            fields=[["max_results"], ["filter"], ["page_token"]],
        ),
        Endpoint(
            "GET",
            f"{v2}/experiments/search",
            query={"max_results": "10", "filter": "name = 'x'", "page_token": ""},
        ),
        Endpoint("GET", f"{v3}/server-info", query={"x": "1"}),
        Endpoint(
            "POST",
            f"{v3}/traces",
            body={"trace": {"trace_info": info}},
            fields=[["trace"], ["trace", "trace_info"]]
            + [["trace", "trace_info", key] for key in info]
            + [
                ["trace", "trace_info", "tags", "mlflow.traceName"],
                ["trace", "trace_info", "trace_location", "mlflow_experiment"],
                ["trace", "trace_info", "trace_location", "mlflow_experiment", "experiment_id"],
            ],
        ),
        Endpoint(
            "PUT",
            f"{artifact}/artifacts/traces.json",
            body=spans,
            fields=[["spans"], s]
            + [[*s, key] for key in spans["spans"][0]]
            + [[*s, "events", 0], [*s, "events", 0, "attributes"], [*s, "events", 0, "name"]]
            + [[*s, "events", 0, "time_unix_nano"], [*s, "attributes", "mlflow.spanInputs"]]
            + [[*s, "status", "code"]],
        ),
        Endpoint("GET", f"{artifact}/artifacts/traces.json", query={"x": "1"}),
        Endpoint(
            "POST",
            f"{v3}/traces/search",
            body=search,
            fields=[[key] for key in search]
            + [["locations", 0], ["locations", 0, "mlflow_experiment", "experiment_id"]]
            + [["order_by", 0], ["experiment_ids"]],
        ),
        Endpoint("GET", f"{v3}/traces/get", query={"trace_id": TRACE_ID, "allow_partial": "true"}),
        Endpoint("GET", f"{v3}/traces/batchGet", query={"trace_ids": TRACE_ID}),
        Endpoint("GET", f"{v3}/traces/batchGetInfos", query={"trace_ids": TRACE_ID}),
        Endpoint(
            "POST",
            f"{v3}/traces/batchGetInfos",
            body={"trace_ids": [TRACE_ID]},
            fields=[["trace_ids"], ["trace_ids", 0]],
        ),
        Endpoint("GET", f"{v3}/traces/{TRACE_ID}", query={"x": "1"}),
        Endpoint(
            "PATCH",
            f"{v3}/traces/{TRACE_ID}/tags",
            body={"key": "k", "value": "v"},
            fields=[["key"], ["value"]],
        ),
        Endpoint(
            "PATCH",
            f"{v2}/traces/{TRACE_ID}/tags",
            body={"key": "mlflow.traceName", "value": "v"},
            fields=[["key"], ["value"]],
        ),
        Endpoint("DELETE", f"{v2}/traces/{TRACE_ID}/tags", body={"key": "k"}, fields=[["key"]]),
        Endpoint(
            "POST",
            f"{v3}/traces/{TRACE_ID}/assessments",
            body=feedback,
            fields=[a, *([*a, key] for key in feedback["assessment"])]
            + [[*a, "source", "source_type"], [*a, "source", "source_id"]]
            + [[*a, "feedback", "value"], [*a, "feedback", "error", "error_code"]],
        ),
        Endpoint(
            "POST",
            f"{v3}/traces/{TRACE_ID}/assessments",
            body=expectation,
            fields=[[*a, "expectation"], [*a, "expectation", "serialized_value", "value"]],
        ),
        Endpoint(
            "POST",
            f"{v3}/traces/{TRACE_ID}/assessments",
            body=override,
            fields=[[*a, "overrides"], [*a, "feedback", "value"]],
        ),
        Endpoint("GET", assessment_path, query={"x": "1"}),
        Endpoint(
            "PATCH",
            assessment_path,
            body=update,
            fields=[["update_mask"], a, [*a, "feedback"], [*a, "feedback", "value"]]
            + [[*a, "rationale"], [*a, "metadata"], [*a, "metadata", "a"]],
        ),
        Endpoint(
            "POST",
            f"{v2}/traces/delete-traces",
            body={"experiment_id": scratch_id, "max_timestamp_millis": 1, "max_traces": 1},
            fields=[["experiment_id"], ["max_timestamp_millis"], ["max_traces"], ["request_ids"]],
        ),
        Endpoint("DELETE", assessment_path, body={}, fields=[["x"]]),
    ]


def _artifact_span() -> dict:
    return artifact_span(
        trace_id=base64.b64encode(bytes.fromhex(TRACE_HEX)).decode(),
        span_id=base64.b64encode(bytes.fromhex(ROOT)).decode(),
        start_time_unix_nano=1_764_000_000_000_000_000,
        end_time_unix_nano=1_764_000_001_000_000_000,
        events=[{"name": "e", "time_unix_nano": 1, "attributes": {"k": "v"}}],
        attributes={"mlflow.spanInputs": '{"q": 1}', "mlflow.spanType": '"CHAIN"'},
    )


def _otlp_json() -> dict:
    return {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE_HEX,
                                "spanId": "aa" * 8,
                                "parentSpanId": ROOT,
                                "name": "child",
                                "startTimeUnixNano": "1764000000100000000",
                                "endTimeUnixNano": "1764000000200000000",
                                "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
                                "events": [{"name": "e", "timeUnixNano": "1"}],
                            }
                        ]
                    }
                ]
            }
        ]
    }


def _otlp_proto_bodies() -> list[bytes]:
    bodies = [b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f"]
    for start, end, name in [
        (2**64 - 1, 2**64 - 1, "max"),
        (2**63, 0, "over int64"),
        (5, 1, "ends before it starts"),
        (1, 2, "n" * 12_000),
    ]:
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id = bytes.fromhex(TRACE_HEX)
        span.span_id = bytes.fromhex("bb" * 8)
        span.parent_span_id = bytes.fromhex(ROOT)
        span.name = name
        span.start_time_unix_nano, span.end_time_unix_nano = start, end
        event = span.events.add()
        event.time_unix_nano = 2**64 - 1
        bodies.append(request.SerializeToString())
    return bodies


def _fuzz_otlp(fuzzer: Fuzzer, experiment_id: str) -> None:
    headers = {"x-mlflow-experiment-id": experiment_id}
    for body in _otlp_proto_bodies():
        fuzzer.send("POST", "/v1/traces", body, "application/x-protobuf", **headers)
    s = ["resourceSpans", 0, "scopeSpans", 0, "spans", 0]
    base = _otlp_json()
    fields = [["resourceSpans"], s] + [
        [*s, key] for key in base["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    ]
    for body in _hostile_bodies(base, fields + [[*s, "events", 0], [*s, "attributes", 0, "value"]]):
        fuzzer.send("POST", "/v1/traces", body, **headers)
    for segment in PATH_SEGMENTS:
        fuzzer.send("POST", "/v1/traces", b"{}", **{"x-mlflow-experiment-id": segment})


def _fuzz_path_segments(fuzzer: Fuzzer, experiment_id: str) -> None:
    artifacts = "/api/2.0/mlflow-artifacts/artifacts"
    for segment in PATH_SEGMENTS:
        for method, path in [
            ("GET", f"/api/3.0/mlflow/traces/{segment}"),
            ("GET", f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments/{segment}"),
            ("GET", f"{artifacts}/{segment}/traces/{TRACE_ID}/artifacts/traces.json"),
            ("GET", f"{artifacts}/{experiment_id}/traces/{segment}/artifacts/traces.json"),
            ("PATCH", f"/api/3.0/mlflow/traces/{segment}/tags"),
        ]:
            fuzzer.send(method, path, b'{"key": "k", "value": "v"}')


def _unreadable(client: Client, admin) -> list:
    """Every stored trace, read back every way there is; the failures."""
    failures = []
    traces = list(Trace.objects.order_by("pk"))
    ids = [t.trace_id for t in traces]
    browser = Client(raise_request_exception=False)
    browser.force_login(admin)
    for trace in traces:
        for path in [
            f"/api/3.0/mlflow/traces/get?trace_id={trace.trace_id}&allow_partial=true",
            f"/api/3.0/mlflow/traces/{trace.trace_id}",
            f"/api/2.0/mlflow-artifacts/artifacts/{trace.experiment_id}/traces/"
            f"{trace.trace_id}/artifacts/traces.json",
        ]:
            response = client.get(path)
            if response.status_code != 200:
                failures.append((path, response.status_code))
        page = browser.get(reverse("annotation:trace-review", args=[trace.trace_id]))
        if page.status_code != 200:
            failures.append(("review page", trace.trace_id, page.status_code))
    for start in range(0, len(ids), 100):
        query = "&".join(f"trace_ids={i}" for i in ids[start : start + 100])
        response = client.get(f"/api/3.0/mlflow/traces/batchGet?{query}")
        if response.status_code != 200:
            failures.append(("batchGet", response.status_code))
    for experiment_id in {str(t.experiment_id) for t in traces}:
        body = {"experiment_ids": [experiment_id], "max_results": 500}
        response = client.post("/api/3.0/mlflow/traces/search", body, "application/json")
        if response.status_code != 200:
            failures.append(("search", experiment_id, response.status_code))
        for path in ["/", reverse("annotation:overview", args=[experiment_id])]:
            page = browser.get(path, {"experiment": experiment_id})
            if page.status_code != 200:
                failures.append((path, experiment_id, page.status_code))
    return failures


def test_hostile_requests_never_get_a_server_error_and_every_trace_stays_readable(capsys):
    admin = make_admin(username="fuzz-admin")
    experiment = make_experiment("fuzz")
    scratch = make_experiment("fuzz-scratch")
    client = Client(
        raise_request_exception=False,
        headers={"Authorization": f"Bearer {create_token(user=admin)[1]}"},
    )
    payload = {"spans": [_artifact_span()]}
    ingest.store_spans(experiment, ingest.parse_artifact_spans(TRACE_ID, payload))
    trace = Trace.objects.get(trace_id=TRACE_ID)
    judged = services.log_feedback(
        trace=trace, name="quality", value=1, source_type="LLM_JUDGE", actor=admin
    )
    fuzzer = Fuzzer(client)

    for endpoint in _endpoints(str(experiment.pk), str(scratch.pk), judged.assessment_id):
        fuzzer.endpoint(endpoint)
    _fuzz_otlp(fuzzer, str(experiment.pk))
    _fuzz_path_segments(fuzzer, str(experiment.pk))
    unreadable = _unreadable(client, admin)

    with capsys.disabled():
        print(f"\nfuzz: {fuzzer.requests} requests, {len(fuzzer.failures)} failures")
        for failure in fuzzer.failures[:300]:
            print("  ", failure)
    assert fuzzer.failures == []
    assert unreadable == []
    assert Trace.objects.count() >= 1
