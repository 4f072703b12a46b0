"""Fast edge cases of the API through Django's test client (no HTTP server)."""

import base64
import gzip
import json
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.test import Client, TestCase, override_settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from accounts.models import ApiToken, AuthFailure
from accounts.tokens import create_token
from annotation import services
from annotation.models import Assessment
from tests.factories import PASSWORD, make_experiment, make_reviewer, make_trace, make_viewer
from traces.models import Span, Trace

TRACE_HEX = "364f579ab387bab0b5f9389eec55a70f"
TRACE_ID = f"tr-{TRACE_HEX}"
ROOT, CHILD = "2911c4b59322daec", "50b0ef892c6a0181"


def otlp(*spans, trace_hex=TRACE_HEX) -> bytes:
    """An ExportTraceServiceRequest; each span is (span_id, parent_id, name, start_ms, end_ms)."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id, parent_id, name, start, end in spans:
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_hex)
        span.span_id = bytes.fromhex(span_id)
        if parent_id:
            span.parent_span_id = bytes.fromhex(parent_id)
        span.name = name
        span.start_time_unix_nano = start * 1_000_000
        span.end_time_unix_nano = end * 1_000_000
        span.status.code = Status.STATUS_CODE_OK
        attribute = span.attributes.add()
        attribute.key = "mlflow.spanInputs"
        kv = attribute.value.kvlist_value.values.add()
        kv.key, kv.value.int_value = "x", 15
    return request.SerializeToString()


def trace_info(experiment_id, **overrides) -> dict:
    info = {
        "trace_id": TRACE_ID,
        "client_request_id": "cid-001",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": str(experiment_id)},
        },
        "request_time": "2026-11-24T11:09:19.694Z",
        "execution_duration": "0.032s",
        "state": "OK",
        "trace_metadata": {"mlflow.trace.user": "alice", "mlflow.trace.sizeStats": "{}"},
        "tags": {"mlflow.traceName": "root", "env": "probe"},
        "request_preview": '{"q": 1}',
    }
    return {**info, **overrides}


class ApiTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = make_reviewer()
        cls.token = create_token(user=cls.user)[1]
        cls.experiment = make_experiment("api")

    def setUp(self):
        self.api = Client(
            enforce_csrf_checks=True, headers={"Authorization": f"Bearer {self.token}"}
        )

    def post_spans(self, body, **headers):
        headers.setdefault("x-mlflow-experiment-id", str(self.experiment.pk))
        return self.api.post(
            "/v1/traces", body, content_type="application/x-protobuf", headers=headers
        )

    def start_trace(self, **overrides):
        return self.api.post(
            "/api/3.0/mlflow/traces",
            {"trace": {"trace_info": trace_info(self.experiment.pk, **overrides)}},
            content_type="application/json",
        )


class SpanIngestTests(ApiTestCase):
    def test_spans_first_make_an_in_progress_trace_that_start_trace_completes(self):
        self.post_spans(otlp((CHILD, ROOT, "middle", 1000, 1020)))
        trace = Trace.objects.get(trace_id=TRACE_ID)
        self.assertEqual(trace.state, Trace.State.IN_PROGRESS)
        self.assertIsNone(trace.execution_duration)

        response = self.start_trace()

        info = response.json()["trace"]["trace_info"]
        self.assertEqual(info["tags"]["mlflow.trace.spansLocation"], "TRACKING_STORE")
        self.assertEqual(info["trace_metadata"]["mlflow.trace.infoFinalized"], "true")
        self.assertEqual(info["execution_duration"], "0.032s")
        trace.refresh_from_db()
        self.assertEqual((trace.state, trace.user, trace.span_count), ("OK", "alice", 1))

    def test_trace_info_first_is_kept_when_spans_arrive(self):
        self.start_trace()
        self.post_spans(otlp((ROOT, None, "root", 1000, 1100), (CHILD, ROOT, "m", 1001, 1002)))

        trace = Trace.objects.get(trace_id=TRACE_ID)
        self.assertEqual(trace.execution_duration, 32)
        self.assertEqual(trace.request_preview, '{"q": 1}')
        self.assertEqual(trace.span_count, 2)

    def test_the_root_span_completes_a_trace_that_never_gets_trace_info(self):
        self.post_spans(otlp((CHILD, ROOT, "middle", 1010, 1020)))
        self.post_spans(otlp((ROOT, None, "agent", 1000, 1100)))

        trace = Trace.objects.get(trace_id=TRACE_ID)
        self.assertEqual(trace.state, Trace.State.OK)
        self.assertEqual((trace.request_time, trace.execution_duration), (1000, 100))
        self.assertEqual(trace.name, "agent")
        self.assertEqual(trace.request_preview, '{"x": 15}')

    def test_a_resent_span_replaces_itself(self):
        self.post_spans(otlp((ROOT, None, "first", 1000, 1100)))
        self.post_spans(otlp((ROOT, None, "second", 1000, 1100), (ROOT, None, "third", 1000, 1100)))

        self.assertEqual(list(Span.objects.values_list("name", flat=True)), ["third"])
        self.assertEqual(Trace.objects.get().span_count, 1)

    def test_a_span_upload_takes_a_constant_number_of_queries(self):
        self.post_spans(otlp((CHILD, ROOT, "first", 1010, 1020)))  # records the token's use
        other = "7e5c1a2b3c4d5e6f"

        # In a savepoint, as tests run in a transaction (the token is remembered): a new
        # trace's root span looks for its trace to lock, the experiment, inserts and locks
        # the trace, inserts the span and updates the trace.
        with self.assertNumQueries(8):
            self.post_spans(otlp((ROOT, None, "root", 1000, 1100), trace_hex="a" * 32))
        # A child span of a stored trace: the trace, unlocked; the span; the span totals.
        with self.assertNumQueries(5):
            self.post_spans(otlp((other, ROOT, "second", 1020, 1030)))

        self.assertEqual(Trace.objects.get(trace_id=TRACE_ID).span_count, 2)

    def test_otlp_json_with_hex_ids_and_gzip_bodies_are_accepted(self):
        body = {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": TRACE_HEX,
                                    "spanId": ROOT,
                                    "name": "json-root",
                                    "startTimeUnixNano": "1000000000",
                                    "endTimeUnixNano": "2000000000",
                                    "status": {"code": 2, "message": "boom"},
                                }
                            ]
                        }
                    ]
                }
            ]
        }
        response = self.api.post(
            "/v1/traces",
            gzip.compress(json.dumps(body).encode()),
            content_type="application/json",
            headers={"Content-Encoding": "gzip", "x-mlflow-experiment-id": str(self.experiment.pk)},
        )

        self.assertEqual(response.status_code, 200)
        trace = Trace.objects.get(trace_id=TRACE_ID)
        self.assertEqual(trace.state, Trace.State.ERROR)
        self.assertEqual(Span.objects.get().status_message, "boom")

    def test_span_upload_errors_are_client_errors(self):
        span = otlp((ROOT, None, "r", 1, 2))
        cases = [
            (self.post_spans(span, **{"x-mlflow-experiment-id": ""}), 422),
            (self.post_spans(span, **{"x-mlflow-experiment-id": "999"}), 404),
            (self.post_spans(b"\x00\x01", **{"Content-Encoding": "gzip"}), 400),
            (self.post_spans(b"", **{"Content-Encoding": "br"}), 400),
            (self.api.post("/v1/traces", b"x", content_type="text/plain",
                           headers={"x-mlflow-experiment-id": "0"}), 400),
        ]  # fmt: skip
        for response, status in cases:
            self.assertEqual(response.status_code, status, response.content)
            self.assertIn("error_code", response.json())
        self.assertFalse(Trace.objects.exists())

    def test_traces_json_artifact_round_trips(self):
        spans = {
            "spans": [
                {
                    "trace_id": "Nk9XmrOHurC1+Tie7FWnDw==",
                    "span_id": "KRHEtZMi2uw=",
                    "parent_span_id": None,
                    "name": "root",
                    "start_time_unix_nano": 1_000_000_000,
                    "end_time_unix_nano": 2_000_000_000,
                    "events": [],
                    "status": {"code": "STATUS_CODE_OK", "message": ""},
                    "attributes": {"mlflow.spanType": '"LLM"', "mlflow.spanInputs": '{"x": 16}'},
                    "links": [],
                }
            ]
        }
        url = (
            f"/api/2.0/mlflow-artifacts/artifacts/{self.experiment.pk}"
            f"/traces/{TRACE_ID}/artifacts/traces.json"
        )

        put = self.api.put(url, json.dumps(spans), content_type="text/plain")
        got = json.loads(b"".join(self.api.get(url).streaming_content))["spans"][0]

        self.assertEqual(put.status_code, 200)
        span = Span.objects.get()
        self.assertEqual((span.span_id, span.span_type, span.inputs), (ROOT, "LLM", {"x": 16}))
        self.assertEqual(got["span_id"], "KRHEtZMi2uw=")
        self.assertEqual(got["attributes"]["mlflow.spanInputs"], '{"x": 16}')
        self.assertEqual(got["attributes"]["mlflow.traceRequestId"], f'"{TRACE_ID}"')


class TraceReadTests(ApiTestCase):
    def test_trace_responses_need_a_constant_number_of_queries(self):
        traces = [make_trace(self.experiment) for _ in range(5)]
        for trace in traces:
            for name in ("a", "b", "c"):
                services.log_feedback(trace=trace, name=name, value=1, source_type="CODE")
        search = {"locations": [{"mlflow_experiment": {"experiment_id": str(self.experiment.pk)}}]}
        ids = "&".join(f"trace_ids={t.trace_id}" for t in traces)

        # The token (and its first use), the traces, then their assessments (and spans); the
        # second request finds the token remembered.
        with self.assertNumQueries(4):
            found = self.api.post(
                "/api/3.0/mlflow/traces/search", search, content_type="application/json"
            ).json()
        with self.assertNumQueries(3):
            batch = self.api.get(f"/api/3.0/mlflow/traces/batchGet?{ids}").json()

        self.assertEqual(len(found["traces"]), 5)
        self.assertEqual([len(t["trace_info"]["assessments"]) for t in batch["traces"]], [3] * 5)
        self.assertEqual(found["traces"][0]["assessments"][0]["feedback"]["value"], 1.0)

    def test_overridden_assessments_come_in_one_more_query_only_when_there_are_any(self):
        traces = [make_trace(self.experiment) for _ in range(3)]
        judged = [
            services.log_feedback(trace=trace, name="a", value=1, source_type="LLM_JUDGE")
            for trace in traces
        ]
        services.override_feedback(assessment_id=judged[0].assessment_id, value=2)
        services.override_feedback(assessment_id=judged[2].assessment_id, value=3)
        info_url = "/api/3.0/mlflow/traces/{}"
        self.api.get("/api/3.0/mlflow/server-info")  # the token's first use is recorded

        # The trace, its assessments (the token is remembered); then the overridden ones, if any.
        with self.assertNumQueries(2):
            plain = self.api.get(info_url.format(traces[1].trace_id)).json()
        with self.assertNumQueries(3):
            search = self.api.post(
                "/api/3.0/mlflow/traces/search",
                {"locations": [{"mlflow_experiment": {"experiment_id": str(self.experiment.pk)}}]},
                content_type="application/json",
            ).json()

        self.assertNotIn("overrides", plain["trace"]["trace_info"]["assessments"][0])
        overrides = {
            a["assessment_id"]: a.get("overrides")
            for t in search["traces"]
            for a in t["assessments"]
        }
        self.assertEqual(
            sorted(filter(None, overrides.values())),
            sorted([judged[0].assessment_id, judged[2].assessment_id]),
        )

    def test_start_trace_stores_inline_assessments_once(self):
        feedback = {
            "assessment_name": "early",
            "source": {"source_type": "CODE", "source_id": "judge"},
            "feedback": {"value": True},
        }
        self.start_trace(assessments=[feedback])
        response = self.start_trace(assessments=[feedback])

        self.assertEqual(len(response.json()["trace"]["trace_info"]["assessments"]), 1)
        self.assertEqual(Assessment.objects.get().annotator, self.user)

    def test_wrong_methods_and_unknown_endpoints(self):
        wrong_method = self.api.delete("/api/3.0/mlflow/traces/search")
        self.assertEqual(wrong_method.status_code, 404)
        self.assertEqual(wrong_method.json()["error_code"], "ENDPOINT_NOT_FOUND")
        unknown = self.api.post(
            "/api/2.0/mlflow/registered-models/create", {}, content_type="application/json"
        )
        self.assertEqual(unknown.status_code, 404)
        self.assertEqual(unknown.json()["error_code"], "ENDPOINT_NOT_FOUND")
        ajax = self.api.get("/ajax-api/3.0/mlflow/label-schemas/list")
        self.assertEqual(ajax.status_code, 404)
        self.assertEqual(ajax.json()["error_code"], "ENDPOINT_NOT_FOUND")


class AssessmentWriteTests(ApiTestCase):
    def test_log_feedback_takes_a_constant_number_of_queries(self):
        trace = make_trace(self.experiment)
        url = f"/api/3.0/mlflow/traces/{trace.trace_id}/assessments"
        feedback = {
            "assessment": {
                "assessment_name": "quality",
                "trace_id": trace.trace_id,
                "source": {"source_type": "HUMAN", "source_id": "rita"},
                "feedback": {"value": 4},
                "rationale": "fine",
            }
        }
        # The token's first use is recorded, and the worker reads the label schemas.
        self.api.post(url, feedback, content_type="application/json")

        # The token, its role and the schemas are remembered, and the insert finds the trace
        # itself: in the write's transaction (a savepoint, as tests run in one), the
        # assessment and its revision.
        with self.assertNumQueries(4):
            response = self.api.post(url, feedback, content_type="application/json")

        self.assertEqual(response.status_code, 200)
        assessment_id = response.json()["assessment"]["assessment_id"]
        created = Assessment.objects.get(assessment_id=assessment_id)
        self.assertEqual((created.value, created.annotator, created.version), (4, self.user, 1))
        self.assertEqual((created.trace, created.revisions.get().action), (trace, "create"))

    def _feedback_on(self, trace, **fields):
        return services.log_feedback(
            trace=trace, name="quality", value=3, actor=self.user, source_id="rita", **fields
        )

    def test_update_and_override_read_the_entry_once_as_they_lock_it(self):
        trace = make_trace(self.experiment)
        mine = self._feedback_on(trace)
        judged = services.log_feedback(
            trace=trace, name="correct", value=False, source_type="LLM_JUDGE"
        )
        base = f"/api/3.0/mlflow/traces/{trace.trace_id}/assessments"
        update = {"assessment": {"feedback": {"value": 5}}, "update_mask": "feedback"}
        override = {
            "assessment": {
                "assessment_name": "correct",
                "trace_id": trace.trace_id,
                "source": {"source_type": "HUMAN", "source_id": "rita"},
                "feedback": {"value": True},
                "overrides": judged.assessment_id,
            }
        }
        self.api.get("/api/3.0/mlflow/server-info")  # the token's first use is recorded

        # In the write's transaction (a savepoint, as tests run in one): the locked entry
        # with its trace, the update and its revision.
        with self.assertNumQueries(5):
            updated = self.api.patch(
                f"{base}/{mine.assessment_id}", update, content_type="application/json"
            )
        # In its savepoint: the locked judge entry, its invalidation and revision, the new
        # entry and its revision (the unique index of live overrides refuses a second one).
        with self.assertNumQueries(7):
            overridden = self.api.post(base, override, content_type="application/json")

        self.assertEqual(updated.status_code, 200, updated.content)
        self.assertEqual(Assessment.objects.get(pk=mine.pk).value, 5)
        self.assertEqual(overridden.status_code, 200, overridden.content)
        self.assertFalse(Assessment.objects.get(pk=judged.pk).valid)

    def test_writes_to_an_entry_under_another_traces_url_change_nothing(self):
        trace, other = make_trace(self.experiment), make_trace(self.experiment)
        mine = self._feedback_on(trace)
        url = f"/api/3.0/mlflow/traces/{other.trace_id}/assessments/{mine.assessment_id}"
        update = {"assessment": {"feedback": {"value": 5}}, "update_mask": "feedback"}

        updated = self.api.patch(url, update, content_type="application/json")
        deleted = self.api.delete(url)

        for response in (updated, deleted):
            self.assertEqual(response.status_code, 404)
            self.assertEqual(response.json()["error_code"], "RESOURCE_DOES_NOT_EXIST")
        stored = Assessment.objects.get(pk=mine.pk)
        self.assertEqual((stored.value, stored.deleted_at, stored.version), (3, None, 1))

    def test_an_update_of_the_other_kinds_value_is_refused(self):
        trace = make_trace(self.experiment)
        mine = self._feedback_on(trace)
        url = f"/api/3.0/mlflow/traces/{trace.trace_id}/assessments/{mine.assessment_id}"
        update = {"assessment": {"expectation": {"value": 5}}, "update_mask": "expectation"}

        response = self.api.patch(url, update, content_type="application/json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertIn("is not an expectation", response.json()["message"])
        self.assertEqual(Assessment.objects.get(pk=mine.pk).version, 1)


class AuthTests(ApiTestCase):
    @override_settings(TRACEMARK_AUTH_MAX_FAILURES=3)
    def test_repeated_bad_credentials_lock_that_username_out_of_the_address(self):
        def call(authorization, address="10.0.0.9"):
            client = Client(headers={"Authorization": authorization}, REMOTE_ADDR=address)
            return client.get("/api/3.0/mlflow/server-info")

        def basic(password):
            credentials = f"{self.user.username}:{password}".encode()
            return "Basic " + base64.b64encode(credentials).decode()

        for _ in range(3):
            self.assertEqual(call(basic("guess")).status_code, 401)

        locked = call(basic(PASSWORD))
        self.assertEqual(locked.status_code, 401)
        self.assertIn("Too many failed", locked.json()["message"])
        self.assertEqual(AuthFailure.objects.count(), 3)
        self.assertEqual(call(f"Bearer {self.token}").status_code, 200)
        self.assertEqual(call(basic(PASSWORD), address="10.0.0.10").status_code, 200)

    @override_settings(TRACEMARK_TOKEN_CACHE_SECONDS=0)
    def test_a_token_records_its_last_use_at_most_once_a_minute(self):
        token = ApiToken.objects.get(user=self.user)
        server_info = "/api/3.0/mlflow/server-info"

        self.api.get(server_info)
        token.refresh_from_db()
        first_use = token.last_used_at
        with self.assertNumQueries(1):
            self.api.get(server_info)
        token.refresh_from_db()
        self.assertEqual(token.last_used_at, first_use)

        ApiToken.objects.update(last_used_at=first_use - timedelta(minutes=2))
        with self.assertNumQueries(2):
            self.api.get(server_info)
        token.refresh_from_db()
        self.assertGreaterEqual(token.last_used_at, first_use)

    def test_roles_come_with_the_token(self):
        viewer = make_viewer()
        viewer_api = Client(headers={"Authorization": f"Bearer {create_token(user=viewer)[1]}"})
        self.api.get("/api/3.0/mlflow/server-info")  # the token's first use is recorded
        viewer_api.get("/api/3.0/mlflow/server-info")
        body = {"name": "new"}

        # Nothing (the token and its role are remembered); then the insert in its savepoint.
        with self.assertNumQueries(0):
            refused = viewer_api.post(
                "/api/2.0/mlflow/experiments/create", body, content_type="application/json"
            )
        with self.assertNumQueries(3):
            created = self.api.post(
                "/api/2.0/mlflow/experiments/create", body, content_type="application/json"
            )

        self.assertEqual(refused.status_code, 403)
        self.assertEqual(created.status_code, 200)

    def test_browser_forms_keep_csrf_protection(self):
        browser = Client(enforce_csrf_checks=True)

        response = browser.post("/accounts/login/", {"username": "x", "password": "y"})

        self.assertEqual(response.status_code, 403)

    def test_createapitoken_prints_a_working_token_on_its_last_line(self):
        out = StringIO()
        call_command("createapitoken", self.user.username, "--name", "ci", stdout=out)
        token = out.getvalue().strip().splitlines()[-1]

        client = Client(headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(client.get("/api/3.0/mlflow/server-info").status_code, 200)
        self.assertEqual(self.user.api_tokens.get(name="ci").prefix, token[:10])
