from django.test import TestCase
from django.urls import reverse

from annotation import services
from tests.factories import make_reviewer, make_trace, make_viewer

T0 = 1_700_000_000_000


class SessionViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer()
        cls.reviewer = make_reviewer(username="rita")
        cls.second = make_trace(
            session="chat/42",
            user="ada",
            request_time=T0 + 5000,
            request_preview="And in Europe?",
            response_preview="Also 30 days.",
        )
        cls.first = make_trace(
            session="chat/42",
            user="ada",
            request_time=T0,
            request_preview="How long do refunds take?",
            response_preview="30 days.",
        )
        cls.elsewhere = make_trace(session="chat/7", request_preview="Unrelated question")
        services.log_feedback(
            trace=cls.first,
            name="helpful",
            value=True,
            rationale="Clear answer",
            actor=cls.reviewer,
        )
        services.log_feedback(
            trace=cls.second,
            name="correct",
            value=False,
            source_type="LLM_JUDGE",
            source_id="judge-v2",
        )
        services.log_expectation(
            trace=cls.second, name="expected_answer", value="14 days in the EU"
        )
        cls.url = reverse("annotation:session", args=["chat/42"])

    def setUp(self):
        self.client.force_login(self.viewer)

    def test_it_requires_login(self):
        self.client.logout()
        response = self.client.get(self.url)
        self.assertRedirects(response, f"{reverse('login')}?next={self.url}")

    def test_it_shows_chat_turns_readably_with_their_json_behind(self):
        chat = '{"messages": [{"role": "user", "content": "Caf\\u00e9 <open>?"}]}'
        make_trace(session="chat/42", request_time=T0 + 9000, request_preview=chat)
        response = self.client.get(self.url)
        self.assertContains(
            response, '<div class="preview-text">Café &lt;open&gt;?</div>', html=True
        )
        self.assertContains(
            response,
            '<details class="raw-json"><summary>JSON</summary><pre>{&quot;messages&quot;: '
            "[{&quot;role&quot;: &quot;user&quot;, &quot;content&quot;: "
            "&quot;Caf\\u00e9 &lt;open&gt;?&quot;}]}</pre></details>",
            html=True,
        )

    def test_it_lists_the_turns_oldest_first_with_request_and_response(self):
        response = self.client.get(self.url)
        self.assertContains(response, "chat/42")
        content = response.content.decode()
        order = [
            content.index(text)
            for text in ("How long do refunds", "30 days.", "And in Europe?", "Also 30 days.")
        ]
        self.assertEqual(order, sorted(order))
        self.assertNotContains(response, "Unrelated question")
        self.assertContains(response, self.first.get_absolute_url())

    def test_each_turn_shows_its_feedback(self):
        response = self.client.get(self.url)
        self.assertContains(response, "Clear answer")
        self.assertContains(response, "rita")
        self.assertContains(response, "judge-v2")
        self.assertContains(response, "LLM judge")
        self.assertContains(response, "14 days in the EU")
        self.assertContains(response, '<span class="visually-hidden">up</span> 1', html=False)
        self.assertContains(response, '<span class="visually-hidden">down</span> 1', html=False)

    def test_deleted_feedback_is_not_shown(self):
        feedback = self.first.assessments.get(name="helpful")
        services.delete_assessment(assessment_id=feedback.assessment_id)
        self.assertNotContains(self.client.get(self.url), "Clear answer")

    def test_an_unknown_session_is_404(self):
        self.assertEqual(
            self.client.get(reverse("annotation:session", args=["nope"])).status_code, 404
        )

    def test_it_escapes_trace_content(self):
        make_trace(session="chat/42", request_preview="<script>alert(1)</script>")
        response = self.client.get(self.url)
        self.assertNotContains(response, "<script>alert(1)")
        self.assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")

    def test_the_query_count_does_not_grow_with_the_turns(self):
        # Session, user, role, the turns, their assessments with annotators, and what blind
        # queues hide from the reader.
        with self.assertNumQueries(6):
            self.client.get(self.url)
        for i in range(10):
            trace = make_trace(session="chat/42", request_time=T0 + 10_000 + i)
            services.log_feedback(trace=trace, name="helpful", value=True, actor=self.reviewer)
        with self.assertNumQueries(6):
            response = self.client.get(self.url)
        self.assertContains(response, "Turn 12")
