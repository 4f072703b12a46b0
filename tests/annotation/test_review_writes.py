"""Assessment writes from the review page: create, edit, conflicts, override, delete, restore."""

from django.test import Client, TestCase
from django.urls import reverse

from annotation import services
from annotation.models import Assessment, LabelSchema, SourceType
from tests.factories import (
    make_admin,
    make_experiment,
    make_reviewer,
    make_span,
    make_trace,
    make_viewer,
)

HTMX = {"HX-Request": "true"}


class ReviewWriteTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")
        cls.other = make_reviewer(username="omar")
        cls.viewer = make_viewer(username="vic")
        cls.trace = make_trace()
        cls.span = make_span(cls.trace, name="retrieve", span_type="RETRIEVER")
        cls.helpful = LabelSchema.objects.create(
            name="helpful", value_type=LabelSchema.ValueType.BOOLEAN
        )
        cls.rating = LabelSchema.objects.create(
            name="rating",
            value_type=LabelSchema.ValueType.NUMERIC,
            min_value=1,
            max_value=5,
            step=1,
            applies_to=LabelSchema.AppliesTo.TRACE,
        )
        cls.create_url = reverse("annotation:assessment-create", args=[cls.trace.trace_id])

    def setUp(self):
        self.client.force_login(self.reviewer)

    def edit_url(self, assessment):
        return reverse("annotation:assessment-edit", args=[assessment.assessment_id])

    def rate(self, value, user=None):
        return services.log_feedback(
            trace=self.trace, name="rating", value=value, actor=user or self.reviewer
        )


class AssessmentCreateTests(ReviewWriteTestCase):
    def test_a_multi_select_question_takes_several_options_as_a_list(self):
        LabelSchema.objects.create(
            name="issues",
            value_type=LabelSchema.ValueType.CATEGORICAL,
            options=["tone", "facts", "length"],
            multi_select=True,
        )
        page = self.client.get(self.trace.get_absolute_url())
        self.assertContains(page, 'type="checkbox" name="value" value="facts" data-key="b"')
        self.client.post(
            self.create_url, {"schema": "issues", "value": ["tone", "facts"]}, headers=HTMX
        )
        self.assertEqual(Assessment.objects.get(name="issues").value, ["tone", "facts"])
        self.client.force_login(make_admin())
        schemas = self.client.get(reverse("annotation:schema-list"))
        self.assertContains(schemas, "Categorical (any of a list)")

    def test_a_schema_of_another_experiment_is_refused(self):
        self.helpful.experiments.set([make_experiment("returns")])
        response = self.client.post(
            self.create_url, {"schema": "helpful", "value": "true"}, headers=HTMX
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "does not apply here")
        self.assertFalse(Assessment.objects.exists())

    def test_htmx_thumbs_down_on_a_span_swaps_in_the_span_region(self):
        response = self.client.post(
            self.create_url,
            {
                "schema": "helpful",
                "span_id": self.span.span_id,
                "value": "false",
                "rationale": "Wrong doc",
            },
            headers=HTMX,
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(
            response.content.decode()
            .strip()
            .startswith(f'<section id="assessments-span-{self.span.span_id}"')
        )
        assessment = Assessment.objects.get()
        self.assertIs(assessment.value, False)
        self.assertEqual(assessment.span_id, self.span.span_id)
        self.assertEqual(assessment.rationale, "Wrong doc")
        self.assertEqual(assessment.annotator, self.reviewer)
        self.assertIn("assessment-saved", response["HX-Trigger"])
        self.assertContains(response, "Wrong doc")
        # The widget now edits the reviewer's answer instead of adding a second one.
        self.assertContains(
            response, reverse("annotation:assessment-edit", args=[assessment.assessment_id])
        )

    def test_without_htmx_it_redirects_back_to_the_page(self):
        response = self.client.post(self.create_url, {"schema": "rating", "value": "4"})
        assessment = Assessment.objects.get()
        self.assertRedirects(
            response, f"{self.trace.get_absolute_url()}#{assessment.assessment_id}"
        )
        self.assertEqual(assessment.value, 4)
        self.assertIsInstance(assessment.value, int)

    def test_out_of_range_rating_rerenders_with_the_error(self):
        response = self.client.post(
            self.create_url, {"schema": "rating", "value": "9"}, headers=HTMX
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "less than or equal to 5")
        self.assertFalse(Assessment.objects.exists())
        response = self.client.post(self.create_url, {"schema": "rating", "value": "9"})
        self.assertContains(response, "less than or equal to 5")
        self.assertContains(response, "<html")

    def test_a_service_error_is_shown_on_the_form(self):
        response = self.client.post(
            self.create_url,
            {"schema": "rating", "value": "3", "span_id": self.span.span_id},
            headers=HTMX,
        )
        self.assertContains(response, "does not apply here")
        self.assertFalse(Assessment.objects.exists())

    def test_a_named_feedback_of_any_type_can_be_added(self):
        self.client.post(
            self.create_url,
            {
                "name": "tone",
                "kind": "feedback",
                "value_type": "boolean",
                "value": "yes",
                "key": "n",
            },
            headers=HTMX,
        )
        self.client.post(
            self.create_url,
            {
                "name": "answer",
                "kind": "expectation",
                "value_type": "structured",
                "value": '{"plan": "team"}',
            },
            headers=HTMX,
        )
        tone, answer = Assessment.objects.order_by("id")
        self.assertIs(tone.value, True)
        self.assertEqual((answer.kind, answer.value), ("expectation", {"plan": "team"}))

    def test_invalid_json_is_reported(self):
        response = self.client.post(
            self.create_url,
            {"name": "answer", "kind": "expectation", "value_type": "structured", "value": "{oops"},
            headers=HTMX,
        )
        self.assertContains(response, "Not valid JSON")
        self.assertContains(response, '<details class="named" open>')

    def test_htmx_post_passes_csrf_with_the_header_htmx_sends(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.reviewer)
        page = client.get(self.trace.get_absolute_url())
        token = page.cookies["csrftoken"].value
        denied = client.post(self.create_url, {"schema": "rating", "value": "3"}, headers=HTMX)
        self.assertEqual(denied.status_code, 403)
        response = client.post(
            self.create_url,
            {"schema": "rating", "value": "3"},
            headers={**HTMX, "X-CSRFToken": token},
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Assessment.objects.get().value, 3)


class AssessmentEditTests(ReviewWriteTestCase):
    def test_edit_in_place_records_a_revision(self):
        rating = self.rate(4)
        response = self.client.post(
            self.edit_url(rating),
            {"value": "5", "version": "1", "rationale": "Better on reread"},
            headers=HTMX,
        )
        self.assertEqual(response.status_code, 200)
        rating.refresh_from_db()
        self.assertEqual((rating.value, rating.version), (5, 2))
        history = self.client.get(
            reverse("annotation:assessment-history", args=[rating.assessment_id])
        )
        self.assertContains(history, "Updated")
        self.assertContains(history, '<span class="old"><strong class="number">4</strong>')

    def test_an_edit_must_carry_its_version(self):
        rating = self.rate(4)
        response = self.client.post(self.edit_url(rating), {"value": "5"}, headers=HTMX)
        self.assertContains(response, "lacks the version it started from")
        rating.refresh_from_db()
        self.assertEqual(rating.value, 4)

    def test_a_stale_edit_shows_both_values_and_overwrites_nothing(self):
        rating = self.rate(3)
        # The author again, from another tab.
        services.update_assessment(
            assessment_id=rating.assessment_id, value=2, actor=self.reviewer, expected_version=1
        )
        data = {"value": "5", "version": "1", "key": f"edit-{rating.assessment_id}"}
        response = self.client.post(self.edit_url(rating), data, headers=HTMX)
        self.assertContains(response, "Someone else saved this entry")
        self.assertContains(
            response, '<dt>Their value</dt><dd><strong class="number">2</strong>', html=False
        )
        self.assertContains(response, '<span class="text-value">5</span>')
        self.assertContains(response, "Save mine instead")
        self.assertContains(response, 'name="version" value="2"')
        rating.refresh_from_db()
        self.assertEqual((rating.value, rating.version), (2, 2))
        # Keeping theirs is a plain link back; keeping mine resubmits on top of version 2.
        self.client.post(self.edit_url(rating), {**data, "version": "2"}, headers=HTMX)
        rating.refresh_from_db()
        self.assertEqual((rating.value, rating.version), (5, 3))

    def test_a_stale_click_on_a_rating_widget_opens_the_conflict_on_the_entry(self):
        rating = self.rate(3)
        services.update_assessment(assessment_id=rating.assessment_id, value=2, expected_version=1)
        data = {"value": "5", "version": "1", "key": "w-assessments-trace-2", "schema": "rating"}
        response = self.client.post(self.edit_url(rating), data, headers=HTMX)
        self.assertContains(response, "Someone else saved this entry")
        self.assertContains(response, '<details class="edit" open>')
        self.assertContains(response, "Save mine instead")

    def test_a_stale_edit_without_htmx_renders_the_page_with_the_conflict(self):
        rating = self.rate(3)
        services.update_assessment(assessment_id=rating.assessment_id, value=2, expected_version=1)
        data = {"value": "5", "version": "1", "key": f"edit-{rating.assessment_id}"}
        response = self.client.post(self.edit_url(rating), data)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "<html")
        self.assertContains(response, "Someone else saved this entry")

    def test_judge_feedback_is_overridden_not_edited(self):
        judged = services.log_feedback(
            trace=self.trace, name="helpful", value=False, source_type=SourceType.LLM_JUDGE
        )
        response = self.client.post(
            self.edit_url(judged), {"value": "true", "version": "1"}, headers=HTMX
        )
        self.assertContains(response, "overridden, not edited")
        judged.refresh_from_db()
        self.assertIs(judged.value, False)


class AssessmentOverrideTests(ReviewWriteTestCase):
    def test_override_keeps_the_judge_entry_visible_as_overridden(self):
        judged = services.log_feedback(
            trace=self.trace,
            name="helpful",
            value=False,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v2",
        )
        url = reverse("annotation:assessment-override", args=[judged.assessment_id])
        response = self.client.post(
            url, {"value": "true", "version": "1", "rationale": "It did help"}, headers=HTMX
        )
        judged.refresh_from_db()
        human = Assessment.objects.get(overrides=judged)
        self.assertFalse(judged.valid)
        self.assertIs(human.value, True)
        self.assertEqual(human.source_type, SourceType.HUMAN)
        self.assertContains(response, "overridden-badge")
        self.assertContains(response, f'href="#{human.assessment_id}"')
        self.assertContains(response, "judge-v2")

    def override_form(self, judged):
        page = self.client.get(reverse("annotation:trace-review", args=[self.trace.trace_id]))
        [entry] = [
            e
            for _name, entries in page.context["trace_region"].groups
            for e in entries
            if e.assessment == judged
        ]
        return entry.override_form

    def test_a_reviewer_who_answered_already_is_pointed_to_their_answer_not_offered_override(
        self,
    ):
        judged = services.log_feedback(
            trace=self.trace, name="helpful", value=False, source_type=SourceType.LLM_JUDGE
        )
        self.assertIsNotNone(self.override_form(judged))
        mine = services.log_feedback(
            trace=self.trace, name="helpful", value=True, actor=self.reviewer
        )
        self.assertIsNone(self.override_form(judged))
        page = self.client.get(reverse("annotation:trace-review", args=[self.trace.trace_id]))
        self.assertContains(page, f'To disagree, change <a href="#{mine.assessment_id}">')
        # The rule the card follows is the one the service holds.
        url = reverse("annotation:assessment-override", args=[judged.assessment_id])
        self.client.post(url, {"value": "true", "version": "1"}, headers=HTMX)
        judged.refresh_from_db()
        self.assertTrue(judged.valid)
        self.assertFalse(Assessment.objects.filter(overrides=judged).exists())
        # Others still may.
        self.client.force_login(self.other)
        self.assertIsNotNone(self.override_form(judged))

    def test_the_override_form_of_a_yes_no_judge_entry_is_thumbs_from_the_start(self):
        for name in ("helpful", "faithful"):  # with a schema, and without one
            with self.subTest(name=name):
                judged = services.log_feedback(
                    trace=self.trace,
                    name=name,
                    value=True,
                    source_type=SourceType.LLM_JUDGE,
                    source_id="judge-v2",
                )
                form = self.override_form(judged)
                self.assertEqual(form.value_type, "boolean")
                html = str(form["value"])
                self.assertIn('type="radio"', html)
                self.assertIn("No", html)
                self.assertNotIn("Thumbs", html)
                self.assertNotIn("<textarea", html)
                # It starts empty: an override is the reviewer's own answer.
                self.assertIsNone(form["value"].value())
                self.assertEqual(form["version"].value(), 1)

    def test_the_override_form_of_a_numeric_judge_entry_is_a_number(self):
        judged = services.log_feedback(
            trace=self.trace, name="score", value=0.4, source_type=SourceType.LLM_JUDGE
        )
        self.assertIn('type="number"', str(self.override_form(judged)["value"]))

    def test_human_feedback_cannot_be_overridden(self):
        mine = services.log_feedback(trace=self.trace, name="helpful", value=True, actor=self.other)
        url = reverse("annotation:assessment-override", args=[mine.assessment_id])
        response = self.client.post(url, {"value": "false", "version": "1"}, headers=HTMX)
        self.assertContains(response, "Only valid feedback from a judge or code")
        self.assertEqual(Assessment.objects.count(), 1)


class AssessmentDeleteRestoreTests(ReviewWriteTestCase):
    def test_delete_is_soft_and_restore_brings_it_back(self):
        rating = self.rate(4)
        delete = reverse("annotation:assessment-delete", args=[rating.assessment_id])
        response = self.client.post(delete, {"version": "1"}, headers=HTMX)
        rating.refresh_from_db()
        self.assertIsNotNone(rating.deleted_at)
        self.assertContains(response, "deleted-badge")
        self.assertContains(response, "Restore")
        self.assertIn('"action": "delete"', response["HX-Trigger"])
        restore = reverse("annotation:assessment-restore", args=[rating.assessment_id])
        response = self.client.post(restore, {"version": "2"}, headers=HTMX)
        self.assertIn('"action": "restore"', response["HX-Trigger"])
        rating.refresh_from_db()
        self.assertIsNone(rating.deleted_at)
        self.assertEqual(rating.revisions.count(), 3)

    def test_deleting_a_changed_entry_asks_again(self):
        rating = self.rate(4)
        services.update_assessment(assessment_id=rating.assessment_id, value=1, expected_version=1)
        delete = reverse("annotation:assessment-delete", args=[rating.assessment_id])
        response = self.client.post(
            delete, {"version": "1", "key": f"delete-{rating.assessment_id}"}, headers=HTMX
        )
        self.assertContains(response, "Someone else saved this entry")
        self.assertContains(response, '<details class="delete" open>')
        rating.refresh_from_db()
        self.assertIsNone(rating.deleted_at)

    def test_editing_an_entry_deleted_since_the_page_was_read_says_so(self):
        rating = self.rate(4)
        # Only the author deletes their entry: from another tab here.
        services.delete_assessment(assessment_id=rating.assessment_id, actor=self.reviewer)
        edit = reverse("annotation:assessment-edit", args=[rating.assessment_id])
        response = self.client.post(edit, {"value": "2", "version": "1"}, headers=HTMX)
        self.assertContains(response, "This entry was deleted by someone else")
        page = self.client.post(edit, {"value": "2", "version": "1"})
        self.assertContains(page, "This entry was deleted by someone else")
        rating.refresh_from_db()
        self.assertEqual((rating.value, rating.version), (4, 2))

    def test_restoring_an_entry_restored_meanwhile_says_so(self):
        rating = self.rate(4)
        services.delete_assessment(assessment_id=rating.assessment_id)
        services.restore(assessment_id=rating.assessment_id)
        restore = reverse("annotation:assessment-restore", args=[rating.assessment_id])
        response = self.client.post(restore, {"version": "2"}, headers=HTMX)
        self.assertContains(response, "This entry was restored by someone else already")
        self.assertEqual(rating.revisions.count(), 3)


class AuthorOnlyTests(ReviewWriteTestCase):
    """Each card offers only what its reader may do; the server refuses the rest anyway."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.admin = make_admin(username="ada")

    def card(self, response, assessment) -> str:
        page = response.content.decode()
        start = page.index(f'<li id="{assessment.assessment_id}"')
        return page[start : page.index("</li>", start)]

    def judge(self):
        return services.log_feedback(
            trace=self.trace,
            name="helpful",
            value=False,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v2",
        )

    def test_someone_elses_entry_has_no_edit_or_delete_and_the_server_refuses_both(self):
        theirs = self.rate(2, user=self.other)
        mine = services.log_feedback(
            trace=self.trace, name="helpful", value=True, actor=self.reviewer
        )
        page = self.client.get(self.trace.get_absolute_url())
        self.assertNotIn('<details class="edit"', self.card(page, theirs))
        self.assertNotIn('<details class="delete"', self.card(page, theirs))
        self.assertIn('<details class="edit"', self.card(page, mine))
        self.assertIn('<details class="delete"', self.card(page, mine))
        edit = self.client.post(
            self.edit_url(theirs),
            {"value": "5", "version": "1", "key": f"edit-{theirs.assessment_id}"},
            headers=HTMX,
        )
        self.assertContains(edit, "Only its author can change this entry")
        delete = reverse("annotation:assessment-delete", args=[theirs.assessment_id])
        refused = self.client.post(
            delete, {"version": "1", "key": f"delete-{theirs.assessment_id}"}, headers=HTMX
        )
        self.assertContains(refused, "Only its author")
        theirs.refresh_from_db()
        self.assertEqual((theirs.value, theirs.version, theirs.deleted_at), (2, 1, None))

    def test_an_admin_cannot_edit_a_reviewers_answer_either(self):
        theirs = self.rate(2, user=self.other)
        self.client.force_login(self.admin)
        page = self.client.get(self.trace.get_absolute_url())
        self.assertNotIn('<details class="edit"', self.card(page, theirs))
        self.assertNotIn('<details class="delete"', self.card(page, theirs))
        self.client.post(self.edit_url(theirs), {"value": "5", "version": "1"}, headers=HTMX)
        theirs.refresh_from_db()
        self.assertEqual(theirs.value, 2)

    def test_reviewers_override_judge_entries_but_only_admins_delete_them(self):
        judged = self.judge()
        delete = reverse("annotation:assessment-delete", args=[judged.assessment_id])
        page = self.client.get(self.trace.get_absolute_url())
        self.assertIn('<details class="override"', self.card(page, judged))
        self.assertNotIn('<details class="delete"', self.card(page, judged))
        self.client.post(delete, {"version": "1"}, headers=HTMX)
        judged.refresh_from_db()
        self.assertIsNone(judged.deleted_at)
        self.client.force_login(self.admin)
        page = self.client.get(self.trace.get_absolute_url())
        self.assertIn('<details class="delete"', self.card(page, judged))
        self.client.post(delete, {"version": "1"}, headers=HTMX)
        judged.refresh_from_db()
        self.assertIsNotNone(judged.deleted_at)

    def test_the_card_names_the_author_and_who_last_changed_it(self):
        theirs = self.rate(2, user=self.other)
        services.update_assessment(assessment_id=theirs.assessment_id, value=3, actor=self.other)
        judged = self.judge()
        services.override_feedback(
            assessment_id=judged.assessment_id, value=True, actor=self.reviewer
        )
        page = self.client.get(self.trace.get_absolute_url())
        self.assertIn('<span class="author">omar</span>', self.card(page, theirs))
        self.assertNotIn("changed by", self.card(page, theirs))
        self.assertIn('<span class="changed-by">changed by rita</span>', self.card(page, judged))


class AssessmentHistoryTests(ReviewWriteTestCase):
    def test_full_page_and_htmx_partial(self):
        rating = self.rate(4, user=self.other)
        services.update_assessment(assessment_id=rating.assessment_id, value=5, actor=self.other)
        url = reverse("annotation:assessment-history", args=[rating.assessment_id])
        page = self.client.get(url)
        self.assertContains(page, "<html")
        self.assertContains(page, "omar")
        self.assertContains(page, "Created")
        partial = self.client.get(url, headers=HTMX)
        self.assertNotContains(partial, "<html")
        self.assertContains(partial, f'id="history-{rating.assessment_id}"')

    def test_viewers_may_read_history(self):
        rating = self.rate(4)
        self.client.force_login(self.viewer)
        url = reverse("annotation:assessment-history", args=[rating.assessment_id])
        self.assertEqual(self.client.get(url).status_code, 200)


class WritePermissionTests(ReviewWriteTestCase):
    def write_requests(self):
        rating = self.rate(4)
        deleted = services.log_feedback(
            trace=self.trace, name="helpful", value=True, actor=self.reviewer
        )
        services.delete_assessment(assessment_id=deleted.assessment_id)
        judged = services.log_feedback(
            trace=self.trace, name="helpful", value=False, source_type=SourceType.LLM_JUDGE
        )
        return [
            (self.create_url, {"name": "tone", "kind": "feedback", "value": "calm"}),
            (
                reverse("annotation:assessment-edit", args=[rating.assessment_id]),
                {"value": "5", "version": "1"},
            ),
            (
                reverse("annotation:assessment-override", args=[judged.assessment_id]),
                {"value": "true", "version": "1"},
            ),
            (
                reverse("annotation:assessment-delete", args=[rating.assessment_id]),
                {"version": "1"},
            ),
            (
                reverse("annotation:assessment-restore", args=[deleted.assessment_id]),
                {"version": "2"},
            ),
        ]

    def test_anonymous_users_are_sent_to_login(self):
        self.client.logout()
        for url, data in self.write_requests():
            with self.subTest(url=url):
                response = self.client.post(url, data)
                self.assertEqual(response.status_code, 302)
                self.assertIn(reverse("login"), response["Location"])

    def test_viewers_get_403_on_every_write(self):
        self.client.force_login(self.viewer)
        before = Assessment.objects.count()
        for url, data in self.write_requests():
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data, headers=HTMX).status_code, 403)
        self.assertEqual(Assessment.objects.count(), before + 3)
        self.assertFalse(Assessment.objects.filter(version__gt=1, deleted_at__isnull=True).exists())

    def test_reviewers_may_write(self):
        for url, data in self.write_requests():
            with self.subTest(url=url):
                response = self.client.post(url, data, headers=HTMX)
                self.assertEqual(response.status_code, 200)
                self.assertNotContains(response, 'class="errors"')

    def test_writes_need_post(self):
        self.assertEqual(self.client.get(self.create_url).status_code, 405)


class JsonWidgetTests(ReviewWriteTestCase):
    def setUp(self):
        super().setUp()
        LabelSchema.objects.create(name="details", value_type=LabelSchema.ValueType.STRUCTURED)

    def details_form(self):
        page = self.client.get(reverse("annotation:trace-review", args=[self.trace.trace_id]))
        [widget] = [w for w in page.context["trace_region"].widgets if w.schema.name == "details"]
        return widget.form

    def test_an_empty_json_widget_starts_empty(self):
        self.assertEqual(self.details_form()["value"].value(), "")
        response = self.client.post(self.create_url, {"schema": "details", "value": ""})
        self.assertContains(response, "This field is required.")
        self.assertFalse(Assessment.objects.exists())

    def test_a_stored_json_value_is_edited_as_its_json(self):
        services.log_feedback(
            trace=self.trace, name="details", value={"answer": "yes"}, actor=self.reviewer
        )
        self.assertEqual(self.details_form()["value"].value(), '{\n  "answer": "yes"\n}')
