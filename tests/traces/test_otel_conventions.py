"""The semantic-convention mapping's precedence and edge cases, as MLflow reads them."""

from django.test import SimpleTestCase

from traces.otel_conventions import translate


class TranslateTests(SimpleTestCase):
    def test_openinference_wins_over_genai_and_traceloop(self):
        attributes, inputs, _ = translate(
            {
                "openinference.span.kind": "RETRIEVER",
                "gen_ai.operation.name": "chat",
                "input.value": "oi",
                "gen_ai.input.messages": '[{"role": "user"}]',
                "llm.token_count.prompt": 7,
                "gen_ai.usage.input_tokens": 9,
            },
            None,
            None,
        )

        self.assertEqual(attributes["mlflow.spanType"], "RETRIEVER")
        self.assertEqual(inputs, "oi")
        self.assertEqual(attributes["mlflow.chat.tokenUsage"], {"input_tokens": 7})

    def test_empty_values_fall_through_to_the_next_key(self):
        _, inputs, outputs = translate(
            {"input.value": "{}", "gen_ai.tool.call.arguments": '{"q": 1}', "output.value": "null"},
            None,
            None,
        )

        self.assertEqual((inputs, outputs), ({"q": 1}, None))

    def test_token_counts_sent_as_text_are_read_and_the_total_added(self):
        attributes, _, _ = translate(
            {"gen_ai.usage.input_tokens": "100", "gen_ai.usage.output_tokens": '"50"'}, None, None
        )

        self.assertEqual(
            attributes["mlflow.chat.tokenUsage"],
            {"input_tokens": 100, "output_tokens": 50, "total_tokens": 150},
        )

    def test_json_text_of_numbers_stays_text_and_unknown_kinds_leave_no_type(self):
        attributes, inputs, _ = translate(
            {"traceloop.span.kind": "reranker", "traceloop.entity.input": "42"}, None, None
        )

        self.assertEqual(inputs, "42")
        self.assertNotIn("mlflow.spanType", attributes)

    def test_what_the_span_already_says_is_kept(self):
        attributes, inputs, _ = translate(
            {
                "mlflow.spanType": "AGENT",
                "openinference.span.kind": "LLM",
                "input.value": "convention",
                "mlflow.chat.tokenUsage": {"input_tokens": 1},
                "llm.token_count.prompt": 5,
            },
            {"own": True},
            None,
        )

        self.assertEqual(attributes["mlflow.spanType"], "AGENT")
        self.assertEqual(inputs, {"own": True})
        self.assertEqual(attributes["mlflow.chat.tokenUsage"], {"input_tokens": 1})
