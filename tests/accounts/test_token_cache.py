"""A worker remembers a token's user for a moment (accounts.tokens)."""

from django.test import TestCase, override_settings

from accounts import tokens
from accounts.forms import ActiveForm, RoleForm
from accounts.roles import Role, role_of
from tests.factories import make_admin, make_reviewer


class TokenCacheTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")

    def setUp(self):
        _, self.raw = tokens.create_token(user=self.ann)
        tokens.user_for_token(self.raw)

    def test_a_remembered_token_costs_no_query(self):
        with self.assertNumQueries(0):
            user = tokens.user_for_token(self.raw)
            self.assertEqual(role_of(user), Role.REVIEWER)
        self.assertEqual(user, self.ann)

    def test_each_caller_gets_its_own_copy(self):
        first, second = tokens.user_for_token(self.raw), tokens.user_for_token(self.raw)
        first.first_name = "changed"
        self.assertIsNot(first, second)
        self.assertEqual(second.first_name, "")

    @override_settings(TRACEMARK_TOKEN_CACHE_SECONDS=0)
    def test_without_a_cache_every_call_looks_the_token_up(self):
        tokens.forget_user(self.ann.pk)
        for _ in range(2):
            with self.assertNumQueries(1):
                tokens.user_for_token(self.raw)

    def test_revoking_forgets_at_once_in_this_process(self):
        tokens.revoke_token(self.ann.api_tokens.get())
        self.assertIsNone(tokens.user_for_token(self.raw))

    def test_deactivating_or_a_new_role_forgets_at_once(self):
        form = RoleForm({"role": "Viewer"}, person=self.ann, actor=self.admin)
        self.assertTrue(form.is_valid())
        form.save()
        self.assertEqual(role_of(tokens.user_for_token(self.raw)), Role.VIEWER)
        form = ActiveForm({"active": "false"}, person=self.ann, actor=self.admin)
        self.assertTrue(form.is_valid())
        form.save()
        self.assertIsNone(tokens.user_for_token(self.raw))
