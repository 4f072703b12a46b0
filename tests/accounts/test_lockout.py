"""Sign-in limits per (username, client address) on the login form and API Basic, and the
client address behind trusted proxies."""

import base64

from django.test import Client, RequestFactory, TestCase, override_settings
from django.urls import reverse

from accounts.lockout import client_address
from accounts.models import AuthFailure
from accounts.tokens import create_token
from tests.factories import PASSWORD, make_reviewer

SERVER_INFO = "/api/3.0/mlflow/server-info"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


FAST_HASHING = ["tests.api.conftest.FewRoundsPBKDF2Hasher"]


@override_settings(TRACEMARK_AUTH_MAX_FAILURES=3, PASSWORD_HASHERS=FAST_HASHING)
class SignInLimitTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.rita = make_reviewer(username="rita")
        cls.ravi = make_reviewer(username="ravi")

    def sign_in(self, username, password, address="10.0.0.1", **headers):
        client = Client(REMOTE_ADDR=address, headers=headers)
        response = client.post(reverse("login"), {"username": username, "password": password})
        return response, client

    def api(self, authorization, address="10.0.0.1"):
        client = Client(REMOTE_ADDR=address, headers={"Authorization": authorization})
        return client.get(SERVER_INFO)

    def test_wrong_passwords_lock_that_username_at_that_address_only(self):
        for _ in range(3):
            response, _ = self.sign_in("rita", "guess", address="203.0.113.9")
            self.assertContains(response, "Please enter a correct username")
        locked, client = self.sign_in("rita", PASSWORD, address="203.0.113.9")
        self.assertContains(locked, "Too many failed sign-in attempts for this account")
        self.assertNotIn("_auth_user_id", client.session)
        # Rita from her own address, and Ravi from the guesser's, still sign in.
        for username, address in (("rita", "10.0.0.1"), ("ravi", "203.0.113.9")):
            response, client = self.sign_in(username, PASSWORD, address=address)
            self.assertRedirects(response, "/", fetch_redirect_response=False)
            self.assertIn("_auth_user_id", client.session)
        self.assertEqual(AuthFailure.objects.filter(username="rita").count(), 3)

    def test_a_locked_out_form_counts_no_more_and_checks_no_password(self):
        for _ in range(5):
            self.sign_in("rita", "guess")
        self.assertEqual(AuthFailure.objects.count(), 3)

    def test_basic_guesses_from_a_stranger_leave_the_owner_and_others_working(self):
        for _ in range(3):
            self.assertEqual(self.api(basic("rita", "guess"), "203.0.113.9").status_code, 401)
        locked = self.api(basic("rita", PASSWORD), "203.0.113.9")
        self.assertIn("Too many failed", locked.json()["message"])
        self.assertEqual(self.api(basic("rita", PASSWORD), "10.0.0.1").status_code, 200)
        self.assertEqual(self.api(basic("ravi", PASSWORD), "203.0.113.9").status_code, 200)
        token = create_token(user=self.rita)[1]
        self.assertEqual(self.api(f"Bearer {token}", "203.0.113.9").status_code, 200)

    def test_the_form_and_basic_share_one_count(self):
        self.sign_in("rita", "guess")
        self.sign_in("rita", "guess")
        self.api(basic("rita", "guess"))
        self.assertIn("Too many failed", self.api(basic("rita", PASSWORD)).json()["message"])
        locked, _ = self.sign_in("rita", PASSWORD)
        self.assertContains(locked, "Too many failed sign-in attempts")

    def test_wrong_tokens_do_not_lock_out_passwords(self):
        for _ in range(4):
            self.assertEqual(self.api("Bearer tmk_guess").status_code, 401)
        self.assertIn("Too many failed", self.api("Bearer tmk_guess").json()["message"])
        self.assertEqual(self.api(basic("rita", PASSWORD)).status_code, 200)
        self.assertEqual(AuthFailure.objects.filter(username="").count(), 3)

    @override_settings(TRACEMARK_TRUSTED_PROXY_COUNT=1)
    def test_behind_a_proxy_each_client_has_its_own_count(self):
        proxy = "127.0.0.1"
        for _ in range(3):
            self.sign_in("rita", "guess", address=proxy, x_forwarded_for="203.0.113.9")
        response, client = self.sign_in("rita", PASSWORD, address=proxy, x_forwarded_for="10.0.0.1")
        self.assertIn("_auth_user_id", client.session)
        # A forged entry to the left of the proxy's does not choose the address.
        forged, _ = self.sign_in(
            "rita", PASSWORD, address=proxy, x_forwarded_for="10.0.0.1, 203.0.113.9"
        )
        self.assertContains(forged, "Too many failed sign-in attempts")
        self.assertEqual(
            set(AuthFailure.objects.values_list("address", flat=True)), {"203.0.113.9"}
        )


class ClientAddressTests(TestCase):
    def address(self, remote="192.0.2.1", forwarded=None):
        headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))

    def test_without_trusted_proxies_the_header_is_ignored(self):
        self.assertEqual(self.address(forwarded="203.0.113.9"), "192.0.2.1")

    @override_settings(TRACEMARK_TRUSTED_PROXY_COUNT=1)
    def test_one_proxy_gives_the_last_entry(self):
        self.assertEqual(self.address(forwarded="1.1.1.1, 203.0.113.9"), "203.0.113.9")
        self.assertEqual(self.address(forwarded=" 2001:db8::1 "), "2001:db8::1")

    @override_settings(TRACEMARK_TRUSTED_PROXY_COUNT=2)
    def test_two_proxies_give_the_second_to_last(self):
        self.assertEqual(self.address(forwarded="1.1.1.1, 203.0.113.9, 10.0.0.2"), "203.0.113.9")

    @override_settings(TRACEMARK_TRUSTED_PROXY_COUNT=2)
    def test_a_missing_short_or_garbled_header_falls_back_to_the_connection(self):
        self.assertEqual(self.address(), "192.0.2.1")
        self.assertEqual(self.address(forwarded="203.0.113.9"), "192.0.2.1")
        self.assertEqual(self.address(forwarded="not-an-ip, 10.0.0.2"), "192.0.2.1")
        self.assertEqual(self.address(forwarded=" , "), "192.0.2.1")
