"""traces.ingest keeps a trace's span totals from what each batch inserted and replaced."""

from django.db.models import Count, Sum
from django.test import TestCase

from tests.factories import make_experiment
from traces import ingest
from traces.models import Experiment, Trace


def record(trace_id, span_id, *, parent="00000000000000aa", text="x", start=1_000_000_000):
    return ingest.SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=f"span {span_id}",
        start_time_ns=start,
        end_time_ns=start + 1_000_000,
        status="OK",
        inputs={"text": text},
    )


class SpanTotalsTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment("totals")

    def assertTotalsMatchTheSpans(self):
        for trace in Trace.objects.annotate(n=Count("spans"), size=Sum("spans__size_bytes")):
            self.assertEqual((trace.span_count, trace.span_bytes), (trace.n, trace.size or 0))

    def test_new_resent_and_mixed_batches_keep_exact_totals(self):
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000001")])
        ingest.store_spans(
            self.experiment.pk,
            [
                record("tr-a", "0000000000000001", text="longer than before"),
                record("tr-a", "0000000000000002"),
                record("tr-b", "0000000000000003"),
            ],
        )
        ingest.store_spans(self.experiment.pk, [record("tr-b", "0000000000000003", text="")])

        self.assertEqual(Trace.objects.get(trace_id="tr-a").span_count, 2)
        self.assertEqual(Trace.objects.get(trace_id="tr-b").span_count, 1)
        self.assertTotalsMatchTheSpans()

    def test_a_span_of_an_existing_trace_is_one_insert_and_one_update(self):
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000001")])
        spans = [record("tr-a", f"00000000000001{n:02d}") for n in range(5)]

        # A savepoint around them, as tests run in a transaction; no experiment, no lock.
        with self.assertNumQueries(5):
            ingest.store_spans(self.experiment.pk + 1000, spans)

        self.assertTotalsMatchTheSpans()

    def test_earlier_spans_move_an_open_trace_back_but_not_a_finalized_one(self):
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000001", start=5 * 10**9)])
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000002", start=4 * 10**9)])
        self.assertEqual(Trace.objects.get().request_time, 4000)
        Trace.objects.update(trace_metadata={ingest.INFO_FINALIZED: "true"})
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000003", start=10**9)])
        self.assertEqual(Trace.objects.get().request_time, 4000)

    def test_a_new_trace_needs_its_experiment(self):
        with self.assertRaises(Experiment.DoesNotExist):
            ingest.store_spans(self.experiment.pk + 1000, [record("tr-new", "0000000000000001")])
        self.assertFalse(Trace.objects.exists())

    def test_a_root_span_completes_the_trace_and_counts(self):
        ingest.store_spans(self.experiment, [record("tr-a", "0000000000000002")])
        ingest.store_spans(self.experiment, [record("tr-a", "00000000000000aa", parent=None)])
        trace = Trace.objects.get()
        self.assertEqual((trace.state, trace.span_count), (Trace.State.OK, 2))
        self.assertTotalsMatchTheSpans()
