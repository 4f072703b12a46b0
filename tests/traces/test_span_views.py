"""Span tree children loaded on demand, the tree's shape, and how span content is shown."""

from django.test import TestCase
from django.urls import reverse

from tests.factories import make_reviewer, make_span, make_trace
from traces.models import Span
from traces.span_detail import describe_span, show_value
from traces.tree import CHILD_PAGE_SIZE, build_tree

HTMX = {"HX-Request": "true"}


class SpanChildrenTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()
        cls.trace = make_trace()
        cls.root = make_span(cls.trace, name="root")
        cls.parent = make_span(cls.trace, parent=cls.root, name="parent")
        cls.child = make_span(cls.trace, parent=cls.parent, name="child <b>one</b>")
        make_span(cls.trace, parent=cls.child, name="grandchild")

    def url(self, span, **query):
        url = reverse("traces:span-children", args=[self.trace.trace_id, span.span_id])
        return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")

    def setUp(self):
        self.client.force_login(self.reviewer)

    def test_it_requires_login(self):
        self.client.logout()
        response = self.client.get(self.url(self.parent), headers=HTMX)
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("login"), response["Location"])

    def test_htmx_gets_the_children_as_a_tree_group(self):
        response = self.client.get(self.url(self.parent, level=3), headers=HTMX)
        body = response.content.decode().strip()
        self.assertTrue(body.startswith(f'<ul role="group" id="children-{self.parent.span_id}">'))
        self.assertIn('aria-level="3"', body)
        self.assertIn("child &lt;b&gt;one&lt;/b&gt;", body)
        self.assertIn('aria-expanded="false"', body)
        self.assertNotIn("grandchild", body)
        self.assertIn("HX-Request", response["Vary"])

    def test_without_htmx_it_opens_the_review_page_on_that_span(self):
        response = self.client.get(self.url(self.parent))
        self.assertRedirects(
            response,
            f"{self.trace.get_absolute_url()}?span={self.parent.span_id}",
            fetch_redirect_response=False,
        )

    def test_unknown_span_is_404(self):
        url = reverse("traces:span-children", args=[self.trace.trace_id, "0123456789abcdef"])
        self.assertEqual(self.client.get(url, headers=HTMX).status_code, 404)

    def test_queries_do_not_grow_with_the_number_of_children(self):
        for count in (3, 60):
            trace = make_trace()
            parent = make_span(trace, name="parent")
            for _ in range(count):
                child = make_span(trace, parent=parent)
                make_span(trace, parent=child)
            url = reverse("traces:span-children", args=[trace.trace_id, parent.span_id])
            # session, user, the user's role (layout context), trace, parent with its child
            # count, timeline, children with theirs
            with self.assertNumQueries(7):
                response = self.client.get(url, headers=HTMX)
            self.assertContains(response, 'role="treeitem"', count=count)


class SpanChildrenPagingTests(TestCase):
    def test_long_child_lists_come_in_pages(self):
        reviewer = make_reviewer()
        trace = make_trace()
        parent = make_span(trace, name="parent")
        start = trace.request_time * 1_000_000
        Span.objects.bulk_create(
            Span(
                trace=trace,
                span_id=f"{i:016x}",
                parent_span_id=parent.span_id,
                name=f"call {i}",
                start_time_ns=start + i,
                end_time_ns=start + i + 10,
            )
            for i in range(1, CHILD_PAGE_SIZE + 31)
        )
        self.client.force_login(reviewer)
        url = reverse("traces:span-children", args=[trace.trace_id, parent.span_id])
        first = self.client.get(url, headers=HTMX)
        self.assertContains(first, 'role="treeitem"', count=CHILD_PAGE_SIZE)
        self.assertContains(first, "Show 30 more")
        rest = self.client.get(f"{url}?offset={CHILD_PAGE_SIZE}&level=2", headers=HTMX)
        self.assertNotContains(rest, 'role="group"')
        self.assertContains(rest, 'role="treeitem"', count=30)
        self.assertNotContains(rest, "more")
        # The review page shows the first page under the root and offers the rest.
        page = self.client.get(trace.get_absolute_url())
        self.assertContains(page, "Show 30 more")


class BuildTreeTests(TestCase):
    def test_orphans_are_roots_and_the_path_to_the_selection_is_expanded(self):
        trace = make_trace()
        root = make_span(trace, name="root")
        a = make_span(trace, parent=root, name="a")
        b = make_span(trace, parent=a, name="b")
        c = make_span(trace, parent=b, name="c")
        orphan = make_span(trace, name="orphan", parent_span_id="feedfeedfeedfeed")
        tree = build_tree(trace, Span.objects.get(pk=c.pk))
        self.assertEqual([n.span.name for n in tree.roots], ["root", "orphan"])
        node = tree.roots[0]
        for name in ("a", "b", "c"):
            self.assertTrue(node.expanded)
            node = node.children[0]
            self.assertEqual(node.span.name, name)
        self.assertTrue(node.selected)
        self.assertEqual(node.level, 4)
        self.assertEqual(orphan.parent_span_id, "feedfeedfeedfeed")

    def test_a_parent_cycle_does_not_loop(self):
        trace = make_trace()
        x = make_span(
            trace, name="x", span_id="000000000000000a", parent_span_id="000000000000000b"
        )
        make_span(trace, name="y", span_id="000000000000000b", parent_span_id="000000000000000a")
        tree = build_tree(trace, Span.objects.get(pk=x.pk))
        self.assertEqual(tree.roots, [])

    def test_waterfall_bars_are_placed_within_the_trace(self):
        trace = make_trace()
        t0 = trace.request_time * 1_000_000
        root = make_span(trace, start_time_ns=t0, end_time_ns=t0 + 100)
        make_span(trace, parent=root, start_time_ns=t0 + 50, end_time_ns=t0 + 75)
        tree = build_tree(trace)
        child = tree.roots[0].children[0]
        self.assertEqual((tree.roots[0].bar_x, tree.roots[0].bar_width), ("0.000", "100.000"))
        self.assertEqual((child.bar_x, child.bar_width), ("50.000", "25.000"))


class ShowValueTests(TestCase):
    def test_chat_messages_become_a_conversation(self):
        shown = show_value(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                ],
                "temperature": 0.2,
            }
        )
        self.assertEqual(shown["kind"], "chat")
        self.assertEqual([m["role"] for m in shown["messages"]], ["system", "user"])
        self.assertEqual(shown["messages"][1]["text"]["text"], "Hi")
        self.assertIn("temperature", shown["rest"]["text"])

    def test_retrieved_documents_become_a_list(self):
        shown = show_value([{"page_content": "Doc", "metadata": {"doc_uri": "kb/1"}}])
        self.assertEqual(shown["kind"], "documents")
        self.assertEqual(shown["documents"][0]["id"], "kb/1")

    def test_long_text_is_previewed_and_json_pretty_printed(self):
        text = show_value("x" * 5000)
        self.assertTrue(text["long"])
        self.assertEqual(len(text["preview"]), 600)
        data = show_value({"a": [1, 2]})
        self.assertEqual(data["kind"], "json")
        self.assertIn('\n  "a": [', data["text"])
        self.assertEqual(show_value(None), {"kind": "empty"})

    def test_describe_span_surfaces_errors_from_exception_events(self):
        trace = make_trace()
        span = make_span(
            trace,
            status=Span.Status.ERROR,
            status_message="Tool failed",
            attributes={"mlflow.spanInputs": "{}", "model": "small"},
            events=[
                {
                    "name": "exception",
                    "timestamp_ns": trace.request_time * 1_000_000,
                    "attributes": {
                        "exception.type": "TimeoutError",
                        "exception.message": "took too long",
                        "exception.stacktrace": "Traceback ...",
                    },
                }
            ],
        )
        detail = describe_span(span)
        self.assertTrue(detail["failed"])
        self.assertEqual(detail["exceptions"][0]["type"], "TimeoutError")
        self.assertEqual([key for key, _ in detail["attributes"]], ["model"])
