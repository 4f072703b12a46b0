from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django.urls import reverse

from accounts import tokens
from accounts.models import ApiToken
from accounts.roles import Role, role_of
from accounts.tokens import user_for_token
from annotation import services
from annotation.models import Assessment, LabelSchema
from tests.factories import PASSWORD, make_admin, make_reviewer, make_trace, make_viewer

User = get_user_model()


class AnnotatorPermissionTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.person = make_reviewer(username="rita")
        token, _ = tokens.create_token(user=cls.person)
        cls.reads = [
            reverse("accounts:annotator-list"),
            reverse("accounts:annotator-detail", args=[cls.person.pk]),
        ]
        cls.writes = {
            reverse("accounts:annotator-list"): {"username": "new", "role": "Admin"},
            reverse("accounts:annotator-role", args=[cls.person.pk]): {"role": "Admin"},
            reverse("accounts:annotator-active", args=[cls.person.pk]): {"active": "false"},
            reverse("accounts:token-create", args=[cls.person.pk]): {"name": "ci"},
            reverse("accounts:token-revoke", args=[cls.person.pk, token.pk]): {},
        }

    def assert_nothing_changed(self):
        self.person.refresh_from_db()
        self.assertTrue(self.person.is_active)
        self.assertEqual(role_of(self.person), Role.REVIEWER)
        self.assertFalse(User.objects.filter(username="new").exists())
        self.assertEqual(ApiToken.objects.filter(revoked_at__isnull=True).count(), 1)

    def test_anonymous_people_are_sent_to_sign_in(self):
        for url in self.reads:
            self.assertRedirects(
                self.client.get(url), f"/accounts/login/?next={url}", fetch_redirect_response=False
            )
        for url, data in self.writes.items():
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data).status_code, 302)
        self.assert_nothing_changed()

    def test_reviewers_and_viewers_are_refused(self):
        for user in (make_reviewer(), make_viewer()):
            self.client.force_login(user)
            for url in self.reads:
                self.assertEqual(self.client.get(url).status_code, 403)
            for url, data in self.writes.items():
                with self.subTest(user=user.username, url=url):
                    self.assertEqual(self.client.post(url, data).status_code, 403)
        self.assert_nothing_changed()


class AnnotatorManagementTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")
        cls.bob = make_reviewer(username="bob")
        LabelSchema.objects.create(name="correct", value_type="boolean")
        for value_ann, value_bob in [(True, True), (True, False), (False, False)]:
            trace = make_trace()
            services.log_feedback(trace=trace, name="correct", value=value_ann, actor=cls.ann)
            services.log_feedback(trace=trace, name="correct", value=value_bob, actor=cls.bob)

    def setUp(self):
        self.client.force_login(self.admin)

    def test_the_list_shows_counts_and_agreement(self):
        response = self.client.get(reverse("accounts:annotator-list"))
        rows = {row["person"].username: row for row in response.context["rows"]}
        self.assertEqual(rows["ann"]["person"].labeled, 3)
        self.assertIsNotNone(rows["ann"]["person"].last_activity)
        self.assertAlmostEqual(rows["ann"]["agreement"], 2 / 3)
        self.assertEqual(rows["boss"]["agreement"], None)
        self.assertContains(response, "67%")

    def test_the_list_runs_a_fixed_number_of_queries(self):
        url = reverse("accounts:annotator-list")
        self.client.get(url)
        for n in range(3):
            make_reviewer(username=f"extra{n}")
        with self.assertNumQueries(6):
            self.client.get(url)

    def test_creating_with_a_password_lets_them_sign_in(self):
        data = {
            "username": "cy",
            "email": "cy@example.com",
            "role": "Reviewer",
            "password": PASSWORD,
        }
        response = self.client.post(reverse("accounts:annotator-list"), data)
        cy = User.objects.get(username="cy")
        self.assertRedirects(response, reverse("accounts:annotator-detail", args=[cy.pk]))
        self.assertEqual(role_of(cy), Role.REVIEWER)
        self.assertTrue(Client().login(username="cy", password=PASSWORD))

    def test_inviting_shows_a_link_once_where_they_choose_a_password(self):
        data = {"username": "dee", "role": "Viewer"}
        response = self.client.post(reverse("accounts:annotator-list"), data)
        self.assertEqual(response.status_code, 200)
        link = response.context["invite_link"]
        self.assertIn("/accounts/reset/", link)
        dee = User.objects.get(username="dee")
        self.assertFalse(dee.has_usable_password())
        self.assertEqual(role_of(dee), Role.VIEWER)
        invitee = Client()
        page = invitee.get(link, follow=True)
        self.assertContains(page, "new_password1")

    def test_a_weak_password_or_taken_name_is_refused(self):
        for data in (
            {"username": "cy", "role": "Reviewer", "password": "123"},
            {"username": "ann", "role": "Reviewer"},
        ):
            with self.subTest(data=data):
                response = self.client.post(reverse("accounts:annotator-list"), data)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, 'class="errorlist"')
        self.assertFalse(User.objects.filter(username="cy").exists())

    def test_setting_a_role(self):
        url = reverse("accounts:annotator-role", args=[self.ann.pk])
        response = self.client.post(url, {"role": "Admin"})
        self.assertRedirects(response, reverse("accounts:annotator-detail", args=[self.ann.pk]))
        self.assertEqual(role_of(User.objects.get(pk=self.ann.pk)), Role.ADMIN)

    def test_admins_cannot_lock_themselves_out(self):
        role = self.client.post(
            reverse("accounts:annotator-role", args=[self.admin.pk]), {"role": "Viewer"}
        )
        active = self.client.post(
            reverse("accounts:annotator-active", args=[self.admin.pk]), {"active": "false"}
        )
        self.assertContains(role, "You cannot take away your own Admin role.")
        self.assertContains(active, "You cannot deactivate yourself.")
        self.admin.refresh_from_db()
        self.assertTrue(self.admin.is_active)
        self.assertEqual(role_of(self.admin), Role.ADMIN)

    def test_deactivation_keeps_their_assessments_and_stops_their_tokens(self):
        _, raw = tokens.create_token(user=self.ann)
        self.client.post(
            reverse("accounts:annotator-active", args=[self.ann.pk]), {"active": "false"}
        )
        self.ann.refresh_from_db()
        self.assertFalse(self.ann.is_active)
        self.assertEqual(Assessment.objects.filter(annotator=self.ann).count(), 3)
        self.assertIsNone(user_for_token(raw))
        self.assertFalse(Client().login(username="ann", password=PASSWORD))
        page = self.client.get(reverse("accounts:annotator-list"))
        self.assertContains(page, "Deactivated")
        self.client.post(
            reverse("accounts:annotator-active", args=[self.ann.pk]), {"active": "true"}
        )
        self.ann.refresh_from_db()
        self.assertTrue(self.ann.is_active)

    def test_a_token_is_shown_once_stored_hashed_and_revocable(self):
        url = reverse("accounts:token-create", args=[self.bob.pk])
        response = self.client.post(url, {"name": "ci-judge"})
        raw = response.context["new_token_raw"]
        self.assertContains(response, raw)
        token = ApiToken.objects.get(user=self.bob, name="ci-judge")
        self.assertNotEqual(token.token_hash, raw)
        self.assertEqual(user_for_token(raw), self.bob)
        detail = self.client.get(reverse("accounts:annotator-detail", args=[self.bob.pk]))
        self.assertNotContains(detail, raw)
        self.assertContains(detail, token.prefix)
        self.client.post(reverse("accounts:token-revoke", args=[self.bob.pk, token.pk]))
        self.assertIsNone(user_for_token(raw))

    def test_a_token_of_someone_else_is_not_found(self):
        token, _ = tokens.create_token(user=self.ann)
        url = reverse("accounts:token-revoke", args=[self.bob.pk, token.pk])
        self.assertEqual(self.client.post(url).status_code, 404)

    def test_htmx_posts_need_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.admin)
        url = reverse("accounts:annotator-role", args=[self.ann.pk])
        self.assertEqual(client.post(url, {"role": "Viewer"}).status_code, 403)
        page = client.get(reverse("accounts:annotator-detail", args=[self.ann.pk]))
        csrf = page.context["csrf_token"]
        response = client.post(
            url, {"role": "Viewer"}, headers={"X-CSRFToken": str(csrf), "HX-Request": "true"}
        )
        self.assertEqual(response.status_code, 302)
        self.assertEqual(role_of(User.objects.get(pk=self.ann.pk)), Role.VIEWER)
