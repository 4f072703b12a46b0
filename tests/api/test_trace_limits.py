"""Per-trace limits: span uploads past MAX_TRACE_SPANS or MAX_TRACE_BYTES get 413 and store
nothing, traces stored past them are not read into memory, and reads stay a small multiple
of a chunk of the trace."""

import base64
import json
import tracemalloc

from django.test import override_settings

from tests.api.test_endpoints import CHILD, ROOT, TRACE_ID, ApiTestCase, otlp
from traces import ingest
from traces.models import Span, Trace

ARTIFACT = "/api/2.0/mlflow-artifacts/artifacts/{}/traces/" + TRACE_ID + "/artifacts/traces.json"


def span_ids(count: int) -> list[str]:
    return [f"{i + 1:016x}" for i in range(count)]


def artifact(span_hex_ids: list[str], payload_chars: int = 10) -> dict:
    return {
        "spans": [
            {
                "span_id": base64.b64encode(bytes.fromhex(span_id)).decode(),
                "parent_span_id": None
                if i == 0
                else base64.b64encode(bytes.fromhex(ROOT)).decode(),
                "name": f"s{i}",
                "start_time_unix_nano": 1_000_000_000 + i,
                "end_time_unix_nano": 2_000_000_000,
                "status": {"code": "STATUS_CODE_OK"},
                "attributes": {"mlflow.spanInputs": json.dumps("x" * payload_chars)},
            }
            for i, span_id in enumerate(span_hex_ids)
        ]
    }


class TraceLimitTests(ApiTestCase):
    def upload(self, payload):
        url = ARTIFACT.format(self.experiment.pk)
        return self.api.put(url, json.dumps(payload), content_type="text/plain")

    @override_settings(TRACEMARK_MAX_TRACE_SPANS=3)
    def test_spans_past_the_span_limit_are_refused_with_413(self):
        self.assertEqual(self.upload(artifact([ROOT, CHILD])).status_code, 200)
        # Re-sending stored spans replaces them, so it stays within the limit.
        self.assertEqual(self.upload(artifact([ROOT, CHILD, "3" * 16])).status_code, 200)

        response = self.upload(artifact(["4" * 16, "5" * 16]))

        self.assertEqual(response.status_code, 413)
        self.assertEqual(response.json()["error_code"], "REQUEST_LIMIT_EXCEEDED")
        self.assertEqual(Span.objects.count(), 3)
        self.assertEqual(Trace.objects.get().span_count, 3)

    @override_settings(TRACEMARK_MAX_TRACE_BYTES=50_000)
    def test_spans_past_the_byte_limit_are_refused_over_otlp_and_artifacts(self):
        self.assertEqual(self.upload(artifact([ROOT], payload_chars=30_000)).status_code, 200)
        response = self.upload(artifact([CHILD], payload_chars=30_000))
        self.assertEqual(response.status_code, 413)
        self.assertEqual(self.upload(artifact([ROOT], payload_chars=40_000)).status_code, 200)

        self.assertEqual(self.post_spans(otlp(("6" * 16, ROOT, "m", 1001, 1002))).status_code, 200)
        trace = Trace.objects.get()
        self.assertEqual(trace.span_count, 2)
        self.assertGreater(trace.span_bytes, 40_000)
        self.assertLess(trace.span_bytes, 50_000)

    def test_traces_stored_past_the_limits_are_not_read(self):
        self.upload(artifact([ROOT, CHILD], payload_chars=20_000))
        self.start_trace()
        reads = [
            f"/api/3.0/mlflow/traces/get?trace_id={TRACE_ID}&allow_partial=true",
            f"/api/3.0/mlflow/traces/batchGet?trace_ids={TRACE_ID}",
            ARTIFACT.format(self.experiment.pk),
        ]
        for path in reads:
            self.assertEqual(self.api.get(path).status_code, 200, path)

        with override_settings(TRACEMARK_MAX_TRACE_BYTES=30_000):
            for path in reads:
                response = self.api.get(path)
                self.assertEqual(response.status_code, 413, path)
                self.assertEqual(response.json()["error_code"], "REQUEST_LIMIT_EXCEEDED")
            info = self.api.get(f"/api/3.0/mlflow/traces/{TRACE_ID}")
            self.assertEqual(info.status_code, 200)

    def test_single_trace_reads_hold_a_chunk_of_the_spans_not_all_of_them(self):
        spans = artifact([ROOT, *span_ids(999)], payload_chars=10_000)
        ingest.store_spans(self.experiment, ingest.parse_artifact_spans(TRACE_ID, spans))
        trace = Trace.objects.get()
        paths = {
            "traces/get": f"/api/3.0/mlflow/traces/get?trace_id={TRACE_ID}&allow_partial=true",
            "traces.json": ARTIFACT.format(self.experiment.pk),
        }
        for name, path in paths.items():
            tracemalloc.start()
            response = self.api.get(path)
            written = sum(len(chunk) for chunk in response.streaming_content)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

            self.assertEqual(response.status_code, 200)
            self.assertGreater(written, trace.span_bytes)
            ratio = peak / trace.span_bytes
            print(f"\n{name}: {trace.span_bytes / 1e6:.1f} MB of spans, peak {peak / 1e6:.1f} MB"
                  f" ({ratio:.1f}x)")  # fmt: skip
            self.assertLess(ratio, 1)
