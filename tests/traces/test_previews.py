import json

from django.test import SimpleTestCase

from traces.previews import readable_preview


def text_of(preview, side="request"):
    return readable_preview(preview, side).text


def chat(*messages, **extra):
    return json.dumps(
        {"messages": [{"role": r, "content": c} for r, c in messages], **extra},
    )


class ReadablePreviewTests(SimpleTestCase):
    def test_it_shows_the_last_user_message_of_a_chat_request(self):
        preview = chat(
            ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Où?")
        )
        self.assertEqual(text_of(preview, "request"), "Où?")

    def test_it_reads_a_bare_list_of_messages(self):
        preview = json.dumps([{"role": "user", "content": "Which edition?"}])
        self.assertEqual(text_of(preview, "request"), "Which edition?")

    def test_it_shows_the_answer_of_a_chat_completion(self):
        preview = json.dumps(
            {
                "id": "c1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}}],
            }
        )
        self.assertEqual(text_of(preview, "response"), "42")

    def test_it_shows_the_text_of_a_completion(self):
        preview = json.dumps({"choices": [{"text": "Once upon"}]})
        self.assertEqual(text_of(preview, "response"), "Once upon")

    def test_it_shows_the_last_assistant_message_of_a_chat_response(self):
        preview = chat(("user", "Hi"), ("assistant", "Hello there"))
        self.assertEqual(text_of(preview, "response"), "Hello there")

    def test_it_joins_the_text_parts_of_a_message(self):
        preview = json.dumps(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "One"},
                    {"type": "image"},
                    {"type": "text", "text": "Two"},
                ],
            }
        )
        self.assertEqual(text_of(preview, "response"), "One\nTwo")

    def test_it_shows_the_string_of_a_one_field_object(self):
        self.assertEqual(text_of('{"question": "What is MLflow?"}'), "What is MLflow?")

    def test_it_follows_one_field_wrappers_to_a_chat(self):
        preview = json.dumps({"inputs": {"messages": [{"role": "user", "content": "Deep"}]}})
        self.assertEqual(text_of(preview, "request"), "Deep")

    def test_it_unquotes_a_json_string(self):
        self.assertEqual(text_of('"Plain answer"', "response"), "Plain answer")

    def test_it_shows_unicode_escapes_as_characters(self):
        self.assertEqual(text_of('{"route": "A \\u2192 B"}'), "A → B")

    def test_it_unescapes_json_it_cannot_shorten(self):
        preview = '{"checked": 500, "note": "caf\\u00e9"}'
        self.assertEqual(text_of(preview), '{"checked": 500, "note": "café"}')

    def test_it_leaves_text_that_is_not_json_as_it_is(self):
        for text in ("Just words", "{not json", "", "[1, 2", "\\u2192"):
            with self.subTest(text=text):
                self.assertEqual(text_of(text), text)

    def test_it_completes_a_preview_cut_inside_a_string(self):
        preview = '{"question": "A long question that goes on...'
        self.assertEqual(text_of(preview), "A long question that goes on…")

    def test_it_completes_a_chat_cut_inside_a_message(self):
        preview = (
            '{"messages": [{"role": "system", "content": "Be brief."}, '
            '{"role": "user", "content": "Tell me everything about the...'
        )
        self.assertEqual(text_of(preview, "request"), "Tell me everything about the…")

    def test_it_drops_half_an_escape_at_the_cut(self):
        for cut in ("\\", "\\u", "\\u21", "\\u219"):
            with self.subTest(cut=cut):
                self.assertEqual(text_of('{"q": "A ' + cut + "..."), "A …")

    def test_it_completes_a_preview_cut_between_fields(self):
        self.assertEqual(text_of('{"a": 1, ...'), '{"a": 1}…')
        self.assertEqual(text_of('{"a": 1, "b":...'), '{"a": 1, "b": null}…')
        self.assertEqual(text_of('{"a": 1, "bee...'), '{"a": 1, "bee": null}…')

    def test_it_leaves_a_cut_preview_it_cannot_complete(self):
        for text in ('{"a": tru...', "}]...", "[1, 2]] ..."):
            with self.subTest(text=text):
                self.assertEqual(text_of(text), text)

    def test_it_falls_back_to_json_for_unknown_shapes(self):
        cases = [
            '{"messages": [{"content": "no role"}]}',
            '{"messages": []}',
            '{"choices": []}',
            '{"choices": ["x"]}',
            '{"choices": [{"message": {"content": null}}]}',
            "[1, 2]",
            "17",
            "null",
            '{"a": {"b": {"c": {"d": {"e": "too deep"}}}}}',
        ]
        for preview in cases:
            with self.subTest(preview=preview):
                self.assertEqual(text_of(preview), json.dumps(json.loads(preview)))

    def test_it_reads_a_message_with_no_user_role_by_its_last_message(self):
        preview = chat(("system", "Only a system prompt"))
        self.assertEqual(text_of(preview, "request"), "Only a system prompt")

    def test_it_keeps_the_raw_json_when_the_text_leaves_out_structure(self):
        for preview in ('{"q": "Why?"}', '[{"role": "user", "content": "Hi"}]', '{"q": "cut...'):
            with self.subTest(preview=preview):
                self.assertEqual(readable_preview(preview).raw_json, preview)
        for preview in ('"Plain"', "17", "Not JSON", "{broken..."):
            with self.subTest(preview=preview):
                self.assertIsNone(readable_preview(preview).raw_json)
