from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django.urls import reverse

from tests.factories import make_admin

User = get_user_model()
NEW_PASSWORD = "a-long-and-fresh-passphrase"


class InvitationTests(TestCase):
    """The link an Admin's invitation shows, followed by the person invited."""

    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin()

    def setUp(self):
        self.client.force_login(self.admin)
        response = self.client.post(
            reverse("accounts:annotator-list"), {"username": "dee", "role": "Reviewer"}
        )
        self.link = response.context["invite_link"]
        self.invitee = Client()

    def assertInAppLayout(self, response):
        self.assertContains(response, 'class="topbar"')
        self.assertContains(response, 'href="/static/css/app.css"')
        self.assertNotContains(response, "/admin/")
        self.assertNotContains(response, "Password reset")
        self.assertNotContains(response, "Django")

    def test_the_link_opens_set_your_password_in_the_apps_layout(self):
        page = self.invitee.get(self.link, follow=True)
        self.assertEqual(page.status_code, 200)
        self.assertInAppLayout(page)
        self.assertContains(page, "<title>Set your password · Tracemark</title>", html=True)
        self.assertContains(page, '<h1 id="set-password-title">Set your password</h1>', html=True)
        self.assertContains(page, "<strong>dee</strong>", html=True)
        self.assertContains(page, 'name="new_password1"')
        self.assertContains(page, 'name="new_password2"')

    def test_setting_the_password_leads_to_the_apps_sign_in(self):
        form_page = self.invitee.get(self.link, follow=True)
        [(set_password_url, _)] = form_page.redirect_chain
        done = self.invitee.post(
            set_password_url,
            {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
            follow=True,
        )
        self.assertRedirects(done, reverse("password_reset_complete"))
        self.assertInAppLayout(done)
        self.assertContains(done, "Your password is set — sign in")
        self.assertContains(done, f'href="{reverse("login")}"')
        self.assertTrue(self.invitee.login(username="dee", password=NEW_PASSWORD))

    def test_mismatched_passwords_are_refused_on_the_same_page(self):
        form_page = self.invitee.get(self.link, follow=True)
        [(set_password_url, _)] = form_page.redirect_chain
        page = self.invitee.post(
            set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": "other"}
        )
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, 'class="field-error"')
        self.assertContains(page, "Set your password")
        self.assertFalse(User.objects.get(username="dee").has_usable_password())

    def test_a_used_link_says_so_and_points_to_sign_in(self):
        form_page = self.invitee.get(self.link, follow=True)
        [(set_password_url, _)] = form_page.redirect_chain
        self.invitee.post(
            set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        page = Client().get(self.link, follow=True)
        self.assertInAppLayout(page)
        self.assertContains(page, "This link no longer works")
        self.assertContains(page, f'href="{reverse("login")}"')
        self.assertNotContains(page, 'name="new_password1"')
