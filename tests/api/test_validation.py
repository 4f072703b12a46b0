"""Input the API refuses before storing anything: one test per kind of hostile value found."""

import base64
import gzip
import json

from django.test import RequestFactory

from annotation import services
from annotation.models import Assessment
from config import urls
from tests.api.test_endpoints import CHILD, ROOT, TRACE_HEX, TRACE_ID, ApiTestCase, trace_info
from tests.factories import make_span, make_trace
from traces import rest
from traces.models import Experiment, Span, Trace

HUGE = "1" + "0" * 400  # an integer JSON number that no double holds


def artifact_span(**overrides) -> dict:
    span = {
        "trace_id": base64.b64encode(bytes.fromhex(TRACE_HEX)).decode(),
        "span_id": base64.b64encode(bytes.fromhex(ROOT)).decode(),
        "parent_span_id": None,
        "name": "root",
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 2_000_000_000,
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "events": [],
        "attributes": {"mlflow.spanInputs": '{"q": 1}'},
    }
    return {**span, **overrides}


class ValidationTestCase(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.trace = make_trace(self.experiment, trace_id=TRACE_ID)
        make_span(self.trace, span_id=ROOT)

    def send(self, method, path, raw, content_type="application/json", **headers):
        return self.api.generic(method, path, raw, content_type=content_type, headers=headers)

    def assertRefused(self, response, status=400, code="INVALID_PARAMETER_VALUE"):
        self.assertEqual(response.status_code, status, response.content[:300])
        self.assertEqual(response.json()["error_code"], code)

    def assertReadable(self):
        for path in [
            f"/api/3.0/mlflow/traces/get?trace_id={TRACE_ID}&allow_partial=true",
            f"/api/3.0/mlflow/traces/batchGet?trace_ids={TRACE_ID}",
            f"/api/3.0/mlflow/traces/{TRACE_ID}",
        ]:
            self.assertEqual(self.api.get(path).status_code, 200, path)
        search = {"experiment_ids": [str(self.experiment.pk)]}
        response = self.api.post("/api/3.0/mlflow/traces/search", search, "application/json")
        self.assertEqual(response.status_code, 200)


class HugeNumberTests(ValidationTestCase):
    def feedback(self, value: str) -> bytes:
        return (
            '{"assessment": {"assessment_name": "q", "source": {"source_type": "HUMAN"},'
            f' "feedback": {{"value": {value}}}}}}}'
        ).encode()

    def test_a_feedback_value_beyond_doubles_is_refused_and_nothing_is_stored(self):
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"
        for value in (HUGE, "-" + HUGE, "1e400", "NaN", "Infinity", f'{{"x": [{HUGE}]}}'):
            with self.subTest(value=value[:10]):
                self.assertRefused(self.send("POST", url, self.feedback(value)))

        self.assertFalse(Assessment.objects.exists())
        self.assertReadable()

    def test_an_update_or_override_to_a_huge_value_is_refused(self):
        judged = services.log_feedback(
            trace=self.trace, name="q", value=1, source_type="LLM_JUDGE", actor=self.user
        )
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"
        update = f'{{"assessment": {{"feedback": {{"value": {HUGE}}}}}, "update_mask": "feedback"}}'
        override = self.feedback(HUGE).replace(
            b'"feedback"', f'"overrides": "{judged.assessment_id}", "feedback"'.encode()
        )

        self.assertRefused(self.send("PATCH", f"{url}/{judged.assessment_id}", update.encode()))
        self.assertRefused(self.send("POST", url, override))

        judged.refresh_from_db()
        self.assertEqual((judged.value, judged.version, judged.valid), (1, 1, True))
        self.assertEqual(Assessment.objects.count(), 1)
        self.assertReadable()

    def test_an_expectation_serialized_with_a_huge_number_is_refused(self):
        body = {
            "assessment": {
                "assessment_name": "answer",
                "source": {"source_type": "HUMAN"},
                "expectation": {"serialized_value": {"value": f'{{"n": {HUGE}}}'}},
            }
        }
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"

        self.assertRefused(self.api.post(url, body, "application/json"))
        self.assertFalse(Assessment.objects.exists())


class ArtifactShapeTests(ValidationTestCase):
    url = f"/api/2.0/mlflow-artifacts/artifacts/{{}}/traces/{TRACE_ID}/artifacts/traces.json"

    def upload(self, **overrides):
        body = json.dumps({"spans": [artifact_span(span_id="ULDviSxqAYE=", **overrides)]})
        return self.send("PUT", self.url.format(self.experiment.pk), body, "text/plain")

    def test_events_that_the_readers_cannot_serve_are_refused(self):
        for events in (
            "boom",
            ["boom"],
            [{"name": "e", "attributes": ["a", "b"]}],
            [{"name": ["e"]}],
            [{"name": "e", "time_unix_nano": 2**64}],
            [{"name": "e", "time_unix_nano": "soon"}],
        ):
            with self.subTest(events=events):
                self.assertRefused(self.upload(events=events))

        self.assertEqual(list(Span.objects.values_list("span_id", flat=True)), [ROOT])
        self.assertReadable()

    def test_span_values_beyond_int64_deep_nesting_and_times_out_of_range_are_refused(self):
        for overrides in (
            {"attributes": {"k": HUGE}},
            {"attributes": {"k": "[" * 100 + "]" * 100}},
            {"attributes": {"k": "[" * 5000 + "]" * 5000}},
            {"start_time_unix_nano": 2**64 - 1},
            {"start_time_unix_nano": -1},
            {"end_time_unix_nano": 1e400},
            {"name": "\ud800"},
        ):
            with self.subTest(overrides=str(overrides)[:40]):
                self.assertRefused(self.upload(**overrides))
        self.assertEqual(Span.objects.count(), 1)

    def test_the_clients_own_upload_still_works_as_text_plain(self):
        self.assertEqual(self.upload(events=[{"name": "e", "time_unix_nano": 5}]).status_code, 200)
        self.assertEqual(Span.objects.count(), 2)
        self.assertReadable()


class MalformedInputTests(ValidationTestCase):
    def test_deeply_nested_json_is_refused(self):
        deep = b'{"trace": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
        for path in ("/api/3.0/mlflow/traces", "/api/3.0/mlflow/traces/search"):
            self.assertRefused(self.send("POST", path, deep))
        nested = '{"trace": {"trace_info": {"tags": ' + '{"a": ' * 70 + "1" + "}" * 73
        self.assertRefused(self.send("POST", "/api/3.0/mlflow/traces", nested.encode()))

    def test_fields_of_the_wrong_type_are_refused(self):
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"
        for assessment in (
            {"assessment_name": "q", "source": {"source_type": ["HUMAN"]}, "feedback": {}},
            {"assessment_name": "q", "source": "HUMAN", "feedback": {"value": 1}},
            {"assessment_name": "q", "feedback": {"value": 1, "error": "bad"}},
        ):
            self.assertRefused(self.api.post(url, {"assessment": assessment}, "application/json"))
        info = trace_info(self.experiment.pk, state=["OK"])
        self.assertRefused(
            self.api.post(
                "/api/3.0/mlflow/traces", {"trace": {"trace_info": info}}, "application/json"
            )
        )
        search = {"locations": ["1"]}
        self.assertRefused(
            self.api.post("/api/3.0/mlflow/traces/search", search, "application/json")
        )

    def test_nul_and_lone_surrogates_are_refused_everywhere(self):
        tags = f"/api/3.0/mlflow/traces/{TRACE_ID}/tags"
        for value in ('"a\\u0000b"', '"\\ud800"', '"x\\udfffy"'):
            with self.subTest(value=value):
                self.assertRefused(
                    self.send("PATCH", tags, f'{{"key": "k", "value": {value}}}'.encode())
                )
        self.assertRefused(
            self.api.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=a%00")
        )
        self.assertRefused(self.api.get("/api/3.0/mlflow/traces/%00"))
        self.trace.refresh_from_db()
        self.assertNotIn("k", self.trace.tags)

    def test_ids_must_be_ascii_digits_within_int64(self):
        for experiment_id in ("\u00b2", "\u0661", "9" * 30, "-1"):
            with self.subTest(experiment_id=experiment_id):
                response = self.api.get(
                    "/api/2.0/mlflow/experiments/get", {"experiment_id": experiment_id}
                )
                self.assertRefused(response)
                search = {"experiment_ids": [experiment_id]}
                self.assertRefused(
                    self.api.post("/api/3.0/mlflow/traces/search", search, "application/json")
                )
                info = trace_info(experiment_id)
                body = {"trace": {"trace_info": info}}
                self.assertRefused(
                    self.api.post("/api/3.0/mlflow/traces", body, "application/json")
                )

    def test_otlp_times_beyond_int64_are_refused(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id = bytes.fromhex(TRACE_HEX), bytes.fromhex(CHILD)
        span.start_time_unix_nano = span.end_time_unix_nano = 2**64 - 1

        self.assertRefused(self.post_spans(request.SerializeToString()))
        self.assertEqual(Span.objects.count(), 1)

    def test_durations_and_timestamps_outside_1970_to_9999_are_refused(self):
        for overrides in (
            {"execution_duration": "1e308s"},
            {"execution_duration": "-1s"},
            {"request_time": "0001-01-01T00:00:00Z"},
            {"request_time": "1969-12-31T23:59:59Z"},
        ):
            with self.subTest(overrides=overrides):
                self.assertRefused(self.start_trace(**overrides))
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"
        feedback = {
            "assessment_name": "q",
            "feedback": {"value": 1},
            "create_time": "0001-01-01T00:00:00Z",
        }
        self.assertRefused(self.api.post(url, {"assessment": feedback}, "application/json"))
        self.assertFalse(Assessment.objects.exists())

    def test_regexes_that_do_not_compile_are_refused(self):
        for pattern in ("(", "[a", "a{2,1}"):
            search = {
                "experiment_ids": [str(self.experiment.pk)],
                "filter": f"attributes.name RLIKE '{pattern}'",
            }
            self.assertRefused(
                self.api.post("/api/3.0/mlflow/traces/search", search, "application/json")
            )

    def test_page_tokens_with_values_of_the_wrong_type_are_refused(self):
        order = ["attribute.timestamp_ms DESC", "attribute.request_id ASC"]
        for after in (["x", "tr-a"], [2**70, "tr-a"], [1, {"a": 1}], [True, "tr-a"]):
            token = base64.urlsafe_b64encode(json.dumps({"order": order, "after": after}).encode())
            search = {"experiment_ids": [str(self.experiment.pk)], "page_token": token.decode()}
            with self.subTest(after=after):
                self.assertRefused(
                    self.api.post("/api/3.0/mlflow/traces/search", search, "application/json")
                )
        for token in ({"after_id": "\u00b2"}, {"after_id": 2**70}):
            raw = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            response = self.api.get("/api/2.0/mlflow/experiments/search", {"page_token": raw})
            self.assertRefused(response)

    def test_lengths_beyond_their_columns_are_refused(self):
        url = f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments"
        for assessment in (
            {"source": {"source_type": "HUMAN", "source_id": "x" * 256}},
            {"span_id": "a" * 17},
            {"feedback": {"value": 1, "error": {"error_code": "E" * 256}}},
        ):
            body = {"assessment": {"assessment_name": "q", "feedback": {"value": 1}, **assessment}}
            self.assertRefused(self.api.post(url, body, "application/json"))
        long_name = {"mlflow.traceName": "n" * 12_000}
        self.assertRefused(self.start_trace(tags=long_name))
        tags = f"/api/3.0/mlflow/traces/{TRACE_ID}/tags"
        body = {"key": "mlflow.traceName", "value": "n" * 12_000}
        self.assertRefused(self.api.patch(tags, body, "application/json"))
        self.assertFalse(Assessment.objects.exists())
        self.assertFalse(Trace.objects.filter(tags__has_key="mlflow.traceName").exists())


class TransportTests(ValidationTestCase):
    def test_a_gzip_body_without_its_trailer_is_refused(self):
        body = gzip.compress(json.dumps({"experiment_ids": ["1"]}).encode())
        path = "/api/3.0/mlflow/traces/search"
        self.assertRefused(self.send("POST", path, body[:-8], **{"Content-Encoding": "gzip"}))
        self.assertEqual(
            self.send("POST", path, body, **{"Content-Encoding": "gzip"}).status_code, 200
        )

    def test_json_endpoints_refuse_bodies_that_are_not_declared_json(self):
        body = json.dumps({"name": "from-a-form"}).encode()
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            with self.subTest(content_type=content_type):
                response = self.send(
                    "POST", "/api/2.0/mlflow/experiments/create", body, content_type
                )
                self.assertRefused(response)
        self.assertFalse(Experiment.objects.filter(name="from-a-form").exists())
        ok = self.send(
            "POST", "/api/2.0/mlflow/experiments/create", body, "application/json; charset=utf-8"
        )
        self.assertEqual(ok.status_code, 200)

    def test_only_requests_that_sent_basic_get_a_basic_challenge(self):
        anonymous = self.client.get("/api/3.0/mlflow/server-info")
        bearer = self.client.get(
            "/api/3.0/mlflow/server-info", headers={"Authorization": "Bearer nope"}
        )
        basic = self.client.get(
            "/api/3.0/mlflow/server-info", headers={"Authorization": "Basic dTpw"}
        )

        for response in (anonymous, bearer):
            self.assertEqual(response.status_code, 401)
            self.assertEqual(response["WWW-Authenticate"], 'Bearer realm="tracemark"')
        self.assertEqual(
            basic["WWW-Authenticate"], 'Bearer realm="tracemark", Basic realm="tracemark"'
        )


class ServerErrorTests(ValidationTestCase):
    def test_unexpected_errors_on_api_paths_answer_in_mlflows_shape(self):
        self.assertEqual(urls.handler500, "traces.rest.server_error")
        request = RequestFactory().get("/api/3.0/mlflow/traces/get")
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            response = rest.server_error(request)

        self.assertEqual(response.status_code, 500)
        self.assertEqual(json.loads(response.content)["error_code"], "INTERNAL_ERROR")
        page = RequestFactory().get("/traces/")
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            self.assertIn(b"Something went wrong", rest.server_error(page).content)
