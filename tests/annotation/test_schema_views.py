from django.test import TestCase
from django.urls import reverse

from annotation import services
from annotation.models import LabelSchema
from annotation.schema_forms import TYPE_FIELDS
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace, make_viewer


def schema_data(**overrides):
    data = {
        "name": "stars",
        "title": "Stars",
        "instructions": "How good is the answer?",
        "kind": "feedback",
        "value_type": "numeric",
        "min_value": "1",
        "max_value": "5",
        "step": "1",
        "options": "",
        "applies_to": "trace",
        "span_types": "",
        "one_per_annotator": "on",
    }
    data.update(overrides)
    return data


class SchemaPermissionTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.schema = LabelSchema.objects.create(name="correct", value_type="boolean")
        cls.list_url = reverse("annotation:schema-list")
        cls.urls = [
            reverse("annotation:schema-create"),
            reverse("annotation:schema-edit", args=[cls.schema.pk]),
        ]

    def test_anonymous_people_are_sent_to_sign_in(self):
        requests = [(self.client.get, self.list_url)]
        requests += [(m, url) for url in self.urls for m in (self.client.get, self.client.post)]
        for method, url in requests:
            with self.subTest(url=url, method=method.__name__):
                response = method(url)
                self.assertEqual(response.status_code, 302)
                self.assertIn("/accounts/login/", response["Location"])

    def test_reviewers_and_viewers_are_refused(self):
        for user in (make_reviewer(), make_viewer()):
            self.client.force_login(user)
            self.assertEqual(self.client.get(self.list_url).status_code, 403)
            for url in self.urls:
                with self.subTest(user=user.username, url=url):
                    self.assertEqual(self.client.get(url).status_code, 403)
                    self.assertEqual(self.client.post(url, schema_data()).status_code, 403)
        self.assertEqual(LabelSchema.objects.count(), 1)


class SchemaEditorTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin()
        cls.reviewer = make_reviewer()

    def setUp(self):
        self.client.force_login(self.admin)

    def test_without_javascript_every_types_fields_show_in_their_own_fieldset(self):
        response = self.client.get(reverse("annotation:schema-create"))
        content = response.content.decode()
        self.assertNotIn(" hidden", content.split("data-schema-form", 1)[1].split("</form>")[0])
        for value_type, names in TYPE_FIELDS.items():
            fieldset = content.split(f'data-shown-for="{value_type}"', 1)[1].split("</fieldset>")[0]
            self.assertIn(f"{value_type.label} only", fieldset)
            for name in names:
                self.assertIn(f'name="{name}"', fieldset)
        spans = content.split('data-shown-when="applies_to" data-shown-for="span both"')[1]
        self.assertIn('name="span_types"', spans.split("</fieldset>")[0])
        self.assertContains(response, 'src="/static/js/schema_form.js"')
        self.assertNotContains(response, "style=")

    def test_help_texts_in_a_types_fieldset_do_not_repeat_the_type(self):
        response = self.client.get(reverse("annotation:schema-create"))
        for value_type in TYPE_FIELDS:
            with self.subTest(value_type=value_type):
                self.assertNotContains(response, f"{value_type.label}:")
        self.assertContains(response, "One option per line.")
        self.assertContains(response, "What true means, shown instead of Yes")

    def test_saving_empties_the_fields_of_other_types_and_of_spans(self):
        data = schema_data(
            positive_label="Good",
            options="a\nb",
            max_length="5",
            span_types="LLM",
            applies_to="trace",
        )
        self.client.post(reverse("annotation:schema-create"), data)
        schema = LabelSchema.objects.get(name="stars")
        self.assertEqual((schema.positive_label, schema.options, schema.max_length), ("", [], None))
        self.assertEqual(schema.span_types, [])

    def test_an_admin_creates_a_numeric_schema(self):
        response = self.client.post(reverse("annotation:schema-create"), schema_data())
        self.assertRedirects(response, reverse("annotation:schema-list"))
        schema = LabelSchema.objects.get(name="stars")
        self.assertEqual((schema.min_value, schema.max_value, schema.step), (1, 5, 1))
        self.assertFalse(schema.experiments.exists())
        page = self.client.get(reverse("annotation:schema-list"))
        self.assertContains(page, "<code>stars</code>", html=True)

    def test_categorical_options_are_one_per_line_and_bounds_are_dropped(self):
        data = schema_data(
            name="tone", value_type="categorical", options="polite\n rude \n\npolite\nneutral"
        )
        self.client.post(reverse("annotation:schema-create"), data)
        schema = LabelSchema.objects.get(name="tone")
        self.assertEqual(schema.options, ["polite", "rude", "neutral"])
        self.assertIsNone(schema.min_value)

    def test_invalid_definitions_re_render_with_errors(self):
        cases = [
            schema_data(min_value="5", max_value="1"),
            schema_data(step="0"),
            schema_data(name="tone", value_type="categorical", options="only"),
        ]
        for data in cases:
            with self.subTest(data=data):
                response = self.client.post(reverse("annotation:schema-create"), data)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, 'class="errorlist"')
        self.assertFalse(LabelSchema.objects.exists())

    def test_span_types_are_kept_for_span_schemas(self):
        data = schema_data(name="grounded", applies_to="span", span_types="LLM, RETRIEVER, LLM")
        self.client.post(reverse("annotation:schema-create"), data)
        self.assertEqual(LabelSchema.objects.get(name="grounded").span_types, ["LLM", "RETRIEVER"])

    def test_an_edit_that_breaks_stored_values_asks_first(self):
        self.client.post(reverse("annotation:schema-create"), schema_data())
        schema = LabelSchema.objects.get(name="stars")
        trace = make_trace()
        for value in (1, 4, 5):
            services.log_feedback(trace=trace, name="stars", value=value)
        url = reverse("annotation:schema-edit", args=[schema.pk])
        tighter = schema_data(max_value="3")

        response = self.client.post(url, tighter)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "2 stored assessments would no longer pass this schema")
        schema.refresh_from_db()
        self.assertEqual(schema.max_value, 5)

        response = self.client.post(url, {**tighter, "confirm": "true"})
        self.assertRedirects(response, reverse("annotation:schema-list"))
        schema.refresh_from_db()
        self.assertEqual(schema.max_value, 3)

    def test_an_edit_that_breaks_nothing_saves_at_once_and_the_name_stays(self):
        self.client.post(reverse("annotation:schema-create"), schema_data())
        schema = LabelSchema.objects.get(name="stars")
        services.log_feedback(trace=make_trace(), name="stars", value=2)
        url = reverse("annotation:schema-edit", args=[schema.pk])
        response = self.client.post(
            url, schema_data(name="renamed", title="Rating", max_value="10")
        )
        self.assertRedirects(response, reverse("annotation:schema-list"))
        schema.refresh_from_db()
        self.assertEqual((schema.name, schema.title, schema.max_value), ("stars", "Rating", 10))

    def test_an_admin_chooses_the_experiments_a_schema_applies_to(self):
        returns, support = make_experiment("returns"), make_experiment("support")
        make_experiment("staging")
        url = reverse("annotation:schema-create")
        self.assertContains(self.client.get(url), 'name="experiments"', count=4)
        self.client.post(url, schema_data(experiments=[returns.pk, support.pk]))
        schema = LabelSchema.objects.get(name="stars")
        self.assertEqual(set(schema.experiments.all()), {returns, support})
        self.client.post(
            reverse("annotation:schema-edit", args=[schema.pk]), schema_data(experiments=[])
        )
        self.assertFalse(schema.experiments.exists())

    def test_the_list_says_where_each_schema_applies_in_constant_queries(self):
        LabelSchema.objects.create(name="anywhere", value_type="boolean")
        scoped = LabelSchema.objects.create(name="scoped", value_type="boolean")
        scoped.experiments.set([make_experiment("returns"), make_experiment("support")])
        with self.assertNumQueries(5):
            page = self.client.get(reverse("annotation:schema-list"))
        self.assertContains(page, "<td>returns, support</td>", html=True)
        self.assertContains(page, '<td><span class="muted">All</span></td>', html=True)
