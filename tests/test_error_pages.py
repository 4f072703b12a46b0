from django.template.loader import render_to_string
from django.test import Client, TestCase, override_settings
from django.urls import include, path, reverse

from tests.factories import make_admin, make_viewer


def broken_view(request):
    raise RuntimeError("the page failed")


# This module as a URLconf: the app's routes, a view that fails, and the app's handler500.
handler500 = "traces.rest.server_error"
urlpatterns = [path("broken/", broken_view), path("", include("config.urls"))]


@override_settings(DEBUG=False)
class ErrorPageTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer(username="vera")

    def assertInLayout(self, response, status, heading):
        self.assertEqual(response.status_code, status)
        self.assertContains(response, "<title>", status_code=status)
        self.assertContains(response, 'class="topbar"', status_code=status)
        self.assertContains(response, 'href="/static/css/app.css"', status_code=status)
        self.assertContains(response, f'<h1 id="error-title">{heading}</h1>', status_code=status)
        self.assertContains(response, f'href="{reverse("traces:list")}"', status_code=status)

    def test_a_viewer_opening_an_admin_page_gets_the_styled_403(self):
        self.client.force_login(self.viewer)
        response = self.client.get(reverse("annotation:schema-list"))
        self.assertInLayout(response, 403, "This page is not for your role")
        self.assertContains(response, 'aria-label="Main"', status_code=403)
        self.assertContains(response, "signed in as vera, a Viewer", status_code=403)

    def test_an_unknown_address_gets_the_styled_404_with_navigation(self):
        self.client.force_login(self.viewer)
        response = self.client.get(reverse("annotation:trace-review", args=["tr-missing"]))
        self.assertInLayout(response, 404, "Nothing here")
        self.assertContains(response, 'aria-label="Main"', status_code=404)
        self.assertNotContains(response, "Sign in</a>", status_code=404)

    def test_a_404_for_someone_signed_out_offers_to_sign_in(self):
        response = self.client.get("/no-such-page/")
        self.assertInLayout(response, 404, "Nothing here")
        self.assertContains(response, f'href="{reverse("login")}"', status_code=404)

    @override_settings(ROOT_URLCONF=__name__)
    def test_a_failing_page_gets_the_styled_500(self):
        client = Client(raise_request_exception=False)
        client.force_login(make_admin())
        response = client.get("/broken/")
        self.assertInLayout(response, 500, "Something went wrong on our side")
        self.assertNotContains(response, "the page failed", status_code=500)

    def test_the_500_page_renders_without_a_request(self):
        page = render_to_string("500.html")
        self.assertIn("Something went wrong on our side", page)
        self.assertIn('class="topbar"', page)
        self.assertIn(f'href="{reverse("login")}"', page)
