"""The span tree's tools on the review page: find a span, expand all, next failing span."""

from django.test import TestCase

from tests.factories import make_reviewer, make_span, make_trace


class TreeToolsTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()
        cls.trace = make_trace(state="ERROR")
        cls.roots = [make_span(cls.trace, name=f"root_{n}", start_time_ns=n) for n in range(6)]
        cls.deep = make_span(
            cls.trace, parent=cls.roots[0], name="lookup", span_type="TOOL", start_time_ns=10
        )
        cls.deeper = make_span(
            cls.trace,
            parent=cls.deep,
            name="fetch",
            start_time_ns=20,
            status="ERROR",
            inputs={"url": "https://kb.example/refunds"},
        )
        cls.last = make_span(
            cls.trace,
            parent=cls.roots[5],
            name="answer",
            status="ERROR",
            status_message="Upstream timed out",
            events=[
                {
                    "name": "exception",
                    "attributes": {"exception.type": "ReadTimeout", "exception.message": "30 s"},
                }
            ],
        )
        cls.url = cls.trace.get_absolute_url()

    def setUp(self):
        self.client.force_login(self.reviewer)

    def found(self, text):
        return [s.name for s in self.client.get(self.url, {"find": text}).context["found"]]

    def test_find_matches_name_type_and_text(self):
        self.assertEqual(self.found("LOOK"), ["lookup"])
        self.assertEqual(self.found("tool"), ["lookup"])
        self.assertEqual(self.found("kb.example/refunds"), ["fetch"])
        self.assertEqual(self.found("nothing like it"), [])

    def test_find_matches_a_spans_error_and_its_exception(self):
        self.assertEqual(self.found("timed out"), ["answer"])
        self.assertEqual(self.found("readtimeout"), ["answer"])
        response = self.client.get(self.url, {"find": "<b>x</b>"})
        self.assertContains(response, "&lt;b&gt;x&lt;/b&gt;")
        self.assertContains(response, "No span matches.")

    def test_expand_all_renders_every_row(self):
        # Six roots stay collapsed by default, so the deep spans are not rendered.
        self.assertNotContains(self.client.get(self.url, {"span": self.last.span_id}), "fetch")
        response = self.client.get(self.url, {"expand": "all", "span": self.last.span_id})
        self.assertContains(response, f'id="node-{self.deeper.span_id}"')
        self.assertContains(response, "Collapse all")
        self.assertEqual(self.client.get(self.url, {"expand": "bogus"}).status_code, 200)

    def test_next_error_walks_the_failing_spans_in_start_order_and_wraps(self):
        def after(span):
            response = self.client.get(self.url, {"span": span.span_id, "next_error": "1"})
            return response.context["span"]

        self.assertEqual(self.client.get(self.url).context["span"], self.deeper)
        self.assertEqual(after(self.deeper), self.last)
        self.assertEqual(after(self.last), self.deeper)
        self.assertEqual(after(self.roots[0]), self.deeper)
