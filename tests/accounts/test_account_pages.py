from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django.urls import NoReverseMatch, reverse

from tests.factories import PASSWORD, make_admin, make_reviewer

User = get_user_model()
NEW_PASSWORD = "a-long-and-fresh-passphrase"
NEW = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}


class AccountPageTests(TestCase):
    """Sign-out, password change and forgotten password in the app's layout and words."""

    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")

    def assertAppPage(self, response, title, status=200):
        self.assertEqual(response.status_code, status)
        self.assertContains(response, f"<title>{title} · Tracemark</title>", status_code=status)
        self.assertContains(response, 'class="topbar"', status_code=status)
        self.assertContains(response, 'href="/static/css/app.css"', status_code=status)
        for admin_words in ("/admin/", "Django", "Password reset"):
            self.assertNotContains(response, admin_words, status_code=status)

    def test_signing_out_says_so_and_leads_back_to_sign_in(self):
        self.client.force_login(self.reviewer)
        page = self.client.post(reverse("logout"))
        self.assertAppPage(page, "Signed out")
        self.assertContains(page, f'href="{reverse("login")}"')
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_changing_a_password_asks_the_old_one_and_confirms_in_the_layout(self):
        self.client.force_login(self.reviewer)
        form = self.client.get(reverse("password_change"))
        self.assertAppPage(form, "Change your password")
        self.assertContains(form, 'name="old_password"')
        done = self.client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, **NEW},
            follow=True,
        )
        self.assertRedirects(done, reverse("password_change_done"))
        self.assertAppPage(done, "Password changed")
        self.assertContains(done, f'href="{reverse("traces:list")}"')
        self.assertTrue(Client().login(username="rita", password=NEW_PASSWORD))

    def test_a_wrong_old_password_is_refused_on_the_same_page(self):
        self.client.force_login(self.reviewer)
        page = self.client.post(
            reverse("password_change"),
            {"old_password": "wrong", **NEW},
        )
        self.assertAppPage(page, "Change your password")
        self.assertContains(page, 'class="field-error"')
        self.assertTrue(Client().login(username="rita", password=PASSWORD))

    def test_changing_a_password_needs_sign_in(self):
        response = self.client.get(reverse("password_change"))
        self.assertRedirects(response, f"{reverse('login')}?next={reverse('password_change')}")

    def test_sign_in_links_to_what_to_do_about_a_forgotten_password(self):
        login = self.client.get(reverse("login"))
        self.assertContains(login, f'href="{reverse("password_reset")}"')
        page = self.client.get(reverse("password_reset"))
        self.assertAppPage(page, "Forgot your password?")
        self.assertContains(page, "Ask an Admin")
        self.assertContains(page, f'href="{reverse("login")}"')
        self.assertNotContains(page, 'name="email"')

    def test_no_reset_by_email_is_offered(self):
        response = self.client.post(reverse("password_reset"), {"email": "rita@example.com"})
        self.assertEqual(response.status_code, 405)
        with self.assertRaises(NoReverseMatch):
            reverse("password_reset_done")
        self.assertEqual(self.client.get("/accounts/password_reset/done/").status_code, 404)


class PasswordLinkTests(TestCase):
    """An Admin makes a link for a person who forgot their password."""

    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin()
        cls.person = make_reviewer(username="rita")
        cls.url = reverse("accounts:annotator-password-link", args=[cls.person.pk])

    def test_an_admin_gets_a_link_shown_once_where_the_person_chooses_a_new_password(self):
        self.client.force_login(self.admin)
        detail = self.client.get(reverse("accounts:annotator-detail", args=[self.person.pk]))
        self.assertContains(detail, f'action="{self.url}"')
        response = self.client.post(self.url)
        link = response.context["password_link"]
        self.assertContains(response, f'value="{link}" aria-label="Password link"')
        self.assertTrue(User.objects.get(username="rita").check_password(PASSWORD))
        person = Client()
        form = person.get(link, follow=True)
        [(set_password_url, _)] = form.redirect_chain
        person.post(set_password_url, NEW)
        self.assertTrue(Client().login(username="rita", password=NEW_PASSWORD))
        self.assertFalse(Client().login(username="rita", password=PASSWORD))

    def test_a_deactivated_person_gets_no_link(self):
        self.person.is_active = False
        self.person.save()
        self.client.force_login(self.admin)
        response = self.client.post(self.url, follow=True)
        self.assertNotIn("password_link", response.context)
        self.assertContains(response, "reactivate them first")

    def test_only_admins_make_links(self):
        self.assertEqual(self.client.post(self.url).status_code, 302)
        self.client.force_login(make_reviewer())
        self.assertEqual(self.client.post(self.url).status_code, 403)
        self.assertEqual(self.client.get(self.url).status_code, 405)


class CsrfFailureTests(TestCase):
    def test_a_stale_form_gets_the_apps_403_saying_to_reload(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_reviewer())
        response = client.post(reverse("logout"))
        self.assertEqual(response.status_code, 403)
        self.assertContains(response, "<title>Form expired · Tracemark</title>", status_code=403)
        self.assertContains(response, "This form has expired", status_code=403)
        self.assertContains(response, "Reload the page", status_code=403)
        self.assertContains(response, 'class="topbar"', status_code=403)
        self.assertContains(response, f'href="{reverse("traces:list")}"', status_code=403)
        for django_words in ("CSRF", "Django", "/admin/", "Referer"):
            self.assertNotContains(response, django_words, status_code=403)

    def test_signed_out_it_offers_sign_in(self):
        client = Client(enforce_csrf_checks=True)
        response = client.post(reverse("login"), {"username": "x", "password": "y"})
        self.assertEqual(response.status_code, 403)
        self.assertContains(response, "This form has expired", status_code=403)
        self.assertContains(response, f'href="{reverse("login")}"', status_code=403)
