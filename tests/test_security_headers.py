from django.test import TestCase, override_settings
from django.urls import reverse

from tests.factories import make_reviewer, make_trace


def directives(response):
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


class ContentSecurityPolicyTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()
        cls.trace = make_trace(session="s-1")

    def test_every_page_gets_a_policy_without_inline_scripts(self):
        self.client.force_login(self.reviewer)
        for url in (
            reverse("login"),
            reverse("traces:list"),
            reverse("annotation:session", args=["s-1"]),
        ):
            with self.subTest(url=url):
                policy = directives(self.client.get(url))
                self.assertEqual(policy["script-src"], ["'self'"])
                self.assertEqual(policy["style-src"], ["'self'"])
                self.assertEqual(policy["object-src"], ["'none'"])
                self.assertEqual(policy["frame-ancestors"], ["'none'"])

    def test_htmx_partials_and_redirects_get_it_too(self):
        self.client.force_login(self.reviewer)
        partial = self.client.get(reverse("traces:list"), headers={"HX-Request": "true"})
        self.assertNotIn("'unsafe-inline'", partial["Content-Security-Policy"])
        self.client.logout()
        redirect = self.client.get(reverse("traces:list"))
        self.assertEqual(redirect.status_code, 302)
        self.assertIn("script-src 'self'", redirect["Content-Security-Policy"])

    def test_no_page_needs_inline_script_or_style(self):
        self.client.force_login(self.reviewer)
        for url in (reverse("login"), reverse("traces:list")):
            with self.subTest(url=url):
                html = self.client.get(url).content.decode()
                self.assertNotRegex(html, r"<script(?![^>]*\bsrc=)[^>]*>")
                self.assertNotIn("<style", html)
                self.assertNotIn(" style=", html)
                self.assertNotRegex(html, r"\son[a-z]+=")

    def test_htmx_is_configured_for_the_policy(self):
        html = self.client.get(reverse("login")).content.decode()
        self.assertIn('"includeIndicatorStyles": false', html)
        self.assertIn('"allowEval": false', html)

    @override_settings(DEBUG=True)
    def test_debug_error_pages_keep_their_inline_styles(self):
        self.client.force_login(self.reviewer)
        response = self.client.get("/no-such-page/")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("Content-Security-Policy", response)

    def test_other_security_headers(self):
        response = self.client.get(reverse("login"))
        self.assertEqual(response["X-Frame-Options"], "DENY")
        self.assertEqual(response["X-Content-Type-Options"], "nosniff")
        self.assertEqual(response["Referrer-Policy"], "same-origin")
