"""StartTraceV3 and span uploads in either order: nothing the app sent is dropped."""

import json

from annotation.models import Assessment
from tests.api.test_endpoints import CHILD, ROOT, TRACE_ID, ApiTestCase, otlp, trace_info
from tests.factories import make_experiment
from traces.models import Trace


def _feedback(name, span_id=None) -> dict:
    feedback = {
        "assessment_name": name,
        "trace_id": TRACE_ID,
        "source": {"source_type": "CODE", "source_id": "app"},
        "feedback": {"value": True},
    }
    return {**feedback, "span_id": span_id} if span_id else feedback


class StartTraceBeforeSpansTests(ApiTestCase):
    def test_an_assessment_on_a_span_not_yet_arrived_is_kept_and_attached(self):
        response = self.start_trace(
            assessments=[_feedback("on-child", CHILD), _feedback("on-trace")],
            trace_metadata={"mlflow.trace.user": "alice", "mlflow.trace.session": "s-1"},
        )
        self.assertEqual(response.status_code, 200, response.content)

        self.post_spans(otlp((ROOT, None, "root", 1000, 1100), (CHILD, ROOT, "child", 1001, 1002)))

        trace = Trace.objects.get(trace_id=TRACE_ID)
        self.assertEqual(
            (trace.client_request_id, trace.user, trace.session), ("cid-001", "alice", "s-1")
        )
        self.assertEqual(trace.tags["env"], "probe")
        self.assertEqual(trace.span_count, 2)
        on_span = Assessment.objects.get(name="on-child")
        self.assertEqual(on_span.span_id, CHILD)
        self.assertTrue(trace.spans.filter(span_id=on_span.span_id).exists())
        self.assertIsNone(Assessment.objects.get(name="on-trace").span_id)
        self.client.force_login(self.user)
        page = self.client.get(f"{trace.get_absolute_url()}?span={CHILD}")
        self.assertContains(page, "on-child")

    def test_the_span_read_back_carries_its_assessment(self):
        self.start_trace(assessments=[_feedback("on-child", CHILD)])
        self.post_spans(otlp((ROOT, None, "root", 1000, 1100), (CHILD, ROOT, "child", 1001, 1002)))

        response = self.api.get("/api/3.0/mlflow/traces/get", {"trace_id": TRACE_ID})
        got = json.loads(b"".join(response.streaming_content))

        assessments = got["trace"]["trace_info"]["assessments"]
        self.assertEqual(
            [(a["assessment_name"], a["span_id"]) for a in assessments], [("on-child", CHILD)]
        )
        self.assertEqual(len(got["trace"]["spans"]), 2)

    def test_an_inline_issue_reference_is_kept(self):
        issue = {**_feedback("iss-7", CHILD), "issue": {"issue_name": "Wrong tool"}}
        del issue["feedback"]

        response = self.start_trace(assessments=[issue])

        returned = response.json()["trace"]["trace_info"]["assessments"]
        self.assertEqual([a["issue"] for a in returned], [{"issue_name": "Wrong tool"}])
        self.assertEqual(Assessment.objects.get().kind, "issue")

    def test_a_malformed_span_id_is_still_refused(self):
        response = self.start_trace(assessments=[_feedback("bad", "not-a-span-id-at-all")])

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertFalse(Assessment.objects.exists())

    def test_creating_an_assessment_later_still_needs_the_span(self):
        self.start_trace()
        response = self.api.post(
            f"/api/3.0/mlflow/traces/{TRACE_ID}/assessments",
            {"assessment": _feedback("late", CHILD)},
            content_type="application/json",
        )

        self.assertEqual(response.status_code, 400)
        self.assertIn("is not part of trace", response.json()["message"])


class TraceIdTests(ApiTestCase):
    def test_start_trace_takes_the_trace_ids_mlflow_takes(self):
        for trace_id in ("tr-1234", "my-app:run_7.trace-1", "t" * 64):
            response = self.start_trace(trace_id=trace_id, client_request_id=None)
            self.assertEqual(response.status_code, 200, response.content)

        info = self.api.get("/api/3.0/mlflow/traces/tr-1234").json()["trace"]["trace_info"]
        self.assertEqual(info["tags"]["env"], "probe")
        tagged = self.api.patch(
            "/api/3.0/mlflow/traces/tr-1234/tags",
            {"key": "reviewed", "value": "yes"},
            content_type="application/json",
        )
        self.assertEqual(tagged.status_code, 200)
        created = self.api.post(
            "/api/3.0/mlflow/traces/tr-1234/assessments",
            {"assessment": {**_feedback("ok"), "trace_id": "tr-1234"}},
            content_type="application/json",
        )
        self.assertEqual(created.status_code, 200, created.content)
        self.client.force_login(self.user)
        self.assertContains(self.client.get("/traces/tr-1234/"), "ok")

    def test_ids_that_cannot_name_a_trace_are_refused(self):
        for trace_id in ("", "a/b", "t" * 65, " tr-1", "tr-1\n", 1234):
            response = self.start_trace(trace_id=trace_id)
            self.assertEqual(response.status_code, 400, trace_id)
            self.assertEqual(response.json()["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertFalse(Trace.objects.exists())


class TraceMovesTests(ApiTestCase):
    def test_assessments_follow_their_trace_to_the_experiment_start_trace_names(self):
        other = make_experiment("api-other")
        self.start_trace(assessments=[_feedback("on-trace")])
        self.assertEqual(Assessment.objects.get(name="on-trace").experiment, self.experiment)

        moved = trace_info(other.pk)
        response = self.api.post(
            "/api/3.0/mlflow/traces",
            {"trace": {"trace_info": moved}},
            content_type="application/json",
        )

        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(Trace.objects.get(trace_id=TRACE_ID).experiment, other)
        self.assertEqual(Assessment.objects.get(name="on-trace").experiment, other)
