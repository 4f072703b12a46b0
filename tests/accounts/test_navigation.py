"""The main navigation offers only the sections the signed-in role may open."""

from django.test import TestCase
from django.urls import reverse

from tests.factories import make_admin, make_reviewer, make_viewer

SECTIONS = {
    "Queues": reverse("annotation:queue-list"),
    "Schemas": reverse("annotation:schema-list"),
    "Annotators": reverse("accounts:annotator-list"),
    "Overview": reverse("annotation:overview-index"),
    "Export": reverse("annotation:export"),
}


class NavigationTests(TestCase):
    def nav_links(self, user):
        self.client.force_login(user)
        page = self.client.get(reverse("traces:list")).content.decode()
        nav = page[page.index('<nav class="mainnav"') : page.index("</nav>")]
        return {name for name, url in SECTIONS.items() if f'href="{url}"' in nav}

    def test_each_role_sees_what_it_can_open(self):
        everything = set(SECTIONS)
        self.assertEqual(self.nav_links(make_admin()), everything)
        self.assertEqual(self.nav_links(make_reviewer()), everything - {"Schemas", "Annotators"})
        self.assertEqual(
            self.nav_links(make_viewer()), everything - {"Queues", "Schemas", "Annotators"}
        )

    def test_every_link_shown_opens(self):
        for user in (make_admin(), make_reviewer(), make_viewer()):
            for name in self.nav_links(user):
                with self.subTest(user=user.username, section=name):
                    response = self.client.get(SECTIONS[name], follow=True)
                    self.assertEqual(response.status_code, 200)
