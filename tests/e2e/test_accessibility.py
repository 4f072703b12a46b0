"""Every page and state, as the role that uses it, at 200% zoom of 1280x800 (640x400): no
critical or serious axe-core violation, no sideways scroll, no console error.

One sweep over the demo data (one live server, one browser, one signed-in page per role)
prints each page's violations by impact. A named URL that is neither swept nor exempt with
a reason fails the coverage test, so a new page cannot go unchecked.
"""

import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotation import judge_report, queues
from annotation.demo import CONTROL_QUEUE, DEMO_QUEUE, SESSION_QUEUE, SPAN_QUEUE
from annotation.models import AssessmentRevision, EvaluationDataset, LabelSchema, Queue
from tests.e2e.audit import Auditor
from tests.factories import PASSWORD
from traces.models import Experiment, Run, Trace

ANONYMOUS, VIEWER, REVIEWER, ADMIN = None, "vera", "rita", "admin"
VIEWPORT = {"width": 640, "height": 400}
NOT_FOUND = "not-found"


@dataclass(frozen=True)
class Visit:
    """A page in one state: its URL name, who opens it, where, and what they do there."""

    name: str
    role: str | None
    path: Callable[[SimpleNamespace], str]
    state: str = ""
    status: int = 200
    then: Callable | None = None

    @property
    def label(self) -> str:
        state = f" ({self.state})" if self.state else ""
        return f"{self.name} as {self.role or 'anonymous'}{state}"


def url(name, *args, query=None):
    """A path maker for Visit: reverse(name) with args read from the demo data."""

    def path(demo):
        found = reverse(name, args=[arg(demo) if callable(arg) else arg for arg in args])
        return f"{found}?{urlencode(query(demo))}" if query else found

    return path


def _bad_sign_in(page):
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()


def _open_shortcuts(page):
    page.locator("main").click(position={"x": 1, "y": 1})
    page.keyboard.press("?")
    page.locator("#shortcut-help[open]").wait_for()


def _select_span(page):
    page.get_by_role("treeitem").nth(1).locator(".node-link").click()
    page.wait_for_url(re.compile(r"[?&]span="))


def _delete_an_entry(page):
    """Answers the trace's first yes/no question and deletes that entry."""
    page.wait_for_load_state()
    page.keyboard.press("y")
    entry = page.locator("#assessments-trace .assessment[data-mine]:has(details.delete)").first
    entry.locator("details.delete > summary").click()
    entry.locator("details.delete button").click()
    page.locator("#assessments-trace .deleted-badge").first.wait_for()
    page.wait_for_load_state("networkidle")


def _label_next(page):
    page.get_by_role("button", name=re.compile("^(Label next item|Resume at item)")).click()
    page.wait_for_url(re.compile(r"/items/\d+/"))


def _submit_empty(page):
    _label_next(page)
    page.get_by_role("button", name=re.compile("Submit and next")).click()
    page.get_by_role("alert").locator(".errorlist").wait_for()


def _reopen_first_item(page):
    page.get_by_role("button", name=re.compile("^Reopen item")).first.click()
    page.locator(".messages").wait_for()


def _password_link(page):
    page.get_by_role("button", name="Make a password link").click()
    page.get_by_label("Password link").wait_for()


def _sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out").wait_for()


def _invite(page):
    page.get_by_label("Username").fill("nora")
    page.get_by_role("button", name=re.compile("^Add")).click()
    page.get_by_label("Invitation link").wait_for()


queue_page = url("annotation:queue-detail", lambda d: d.queue.pk)
span_queue_page = url("annotation:queue-detail", lambda d: d.span_queue.pk)
session_queue_page = url("annotation:queue-detail", lambda d: d.session_queue.pk)
trace_list = url("traces:list")

VISITS = [
    Visit("login", ANONYMOUS, url("login")),
    Visit("login", ANONYMOUS, url("login"), "failed sign-in", then=_bad_sign_in),
    Visit("password_reset", ANONYMOUS, url("password_reset")),
    Visit(
        "password_reset_confirm",
        ANONYMOUS,
        url("password_reset_confirm", lambda d: d.uid, lambda d: d.token),
        "invitation",
    ),
    Visit("password_reset_complete", ANONYMOUS, url("password_reset_complete")),
    Visit("traces:list", REVIEWER, trace_list),
    Visit(
        "traces:list",
        REVIEWER,
        url("traces:list", query=lambda d: {"experiment": d.experiment.pk, "state": "ERROR"}),
        "filtered",
    ),
    Visit("traces:list", REVIEWER, url("traces:list", query=lambda d: {"q": "zzz"}), "no match"),
    Visit("traces:list", REVIEWER, trace_list, "shortcut help", then=_open_shortcuts),
    Visit("traces:list", VIEWER, trace_list),
    Visit("annotation:trace-review", REVIEWER, lambda d: d.trace.get_absolute_url()),
    Visit(
        "annotation:trace-review",
        REVIEWER,
        lambda d: d.trace.get_absolute_url(),
        "span selected",
        then=_select_span,
    ),
    Visit(
        "annotation:trace-review",
        REVIEWER,
        lambda d: d.trace.get_absolute_url(),
        "entry deleted",
        then=_delete_an_entry,
    ),
    Visit("annotation:trace-review", REVIEWER, lambda d: d.failed.get_absolute_url(), "Error"),
    Visit("annotation:trace-review", VIEWER, lambda d: d.trace.get_absolute_url()),
    Visit(
        "annotation:assessment-history",
        REVIEWER,
        url("annotation:assessment-history", lambda d: d.revised.assessment_id),
    ),
    Visit("annotation:session", REVIEWER, url("annotation:session", lambda d: d.trace.session)),
    Visit("annotation:queue-list", REVIEWER, url("annotation:queue-list")),
    Visit("annotation:queue-detail", REVIEWER, queue_page),
    Visit("annotation:queue-item", REVIEWER, queue_page, then=_label_next),
    Visit("annotation:queue-item", REVIEWER, queue_page, "submitted empty", then=_submit_empty),
    Visit("annotation:queue-item", REVIEWER, span_queue_page, "span questions", then=_label_next),
    Visit("annotation:queue-item", REVIEWER, session_queue_page, "session", then=_label_next),
    Visit("annotation:dataset-list", REVIEWER, url("annotation:dataset-list")),
    Visit(
        "annotation:dataset-detail",
        REVIEWER,
        url("annotation:dataset-detail", lambda d: d.dataset.dataset_id),
    ),
    Visit("annotation:dataset-add", REVIEWER, url("annotation:dataset-add")),
    Visit("annotation:export", REVIEWER, url("annotation:export")),
    Visit("annotation:overview", REVIEWER, url("annotation:overview", lambda d: d.experiment.pk)),
    Visit("traces:run-list", REVIEWER, url("traces:run-list", lambda d: d.run.experiment_id)),
    Visit("traces:run-detail", REVIEWER, url("traces:run-detail", lambda d: d.run.run_id)),
    Visit("annotation:judges", REVIEWER, url("annotation:judges", lambda d: d.experiment.pk)),
    Visit(
        "annotation:judge-detail",
        ADMIN,
        url(
            "annotation:judge-detail",
            lambda d: d.experiment.pk,
            query=lambda d: {"name": d.judge.name, "source": d.judge.source_id},
        ),
    ),
    Visit("annotation:schema-list", REVIEWER, url("annotation:schema-list"), "forbidden", 403),
    Visit("annotation:schema-list", ADMIN, url("annotation:schema-list")),
    Visit("annotation:schema-create", ADMIN, url("annotation:schema-create")),
    Visit("annotation:schema-edit", ADMIN, url("annotation:schema-edit", lambda d: d.schema.pk)),
    Visit("annotation:queue-create", ADMIN, url("annotation:queue-create")),
    Visit("annotation:queue-detail", ADMIN, queue_page),
    Visit("annotation:queue-detail", ADMIN, queue_page, "flash message", then=_reopen_first_item),
    Visit("annotation:queue-detail", ADMIN, span_queue_page, "span questions"),
    Visit("annotation:queue-detail", ADMIN, session_queue_page, "sessions"),
    Visit(
        "annotation:queue-disagreements",
        ADMIN,
        url("annotation:queue-disagreements", lambda d: d.span_queue.pk),
        "span questions",
    ),
    Visit(
        "annotation:queue-disagreements",
        ADMIN,
        url("annotation:queue-disagreements", lambda d: d.queue.pk),
    ),
    Visit(
        "annotation:queue-adjudicate",
        ADMIN,
        url(
            "annotation:queue-adjudicate",
            lambda d: d.queue.pk,
            lambda d: d.disagreement.item.position,
            lambda d: d.disagreement.schema.pk,
        ),
    ),
    Visit(
        "annotation:queue-control-item",
        ADMIN,
        url("annotation:queue-control-item", lambda d: d.queue.pk, 1),
    ),
    Visit(
        "annotation:queue-control-item",
        ADMIN,
        url("annotation:queue-control-item", lambda d: d.control_queue.pk, 1),
        "a rating",
    ),
    Visit("accounts:annotator-list", ADMIN, url("accounts:annotator-list")),
    Visit("accounts:annotator-detail", ADMIN, url("accounts:annotator-detail", lambda d: d.rita)),
    Visit(
        "accounts:annotator-list",
        ADMIN,
        url("accounts:annotator-list"),
        "invitation link",
        then=_invite,
    ),
    Visit(
        "accounts:annotator-password-link",
        ADMIN,
        url("accounts:annotator-detail", lambda d: d.rita),
        "new password link",
        then=_password_link,
    ),
    Visit("password_change", ADMIN, url("password_change")),
    Visit("password_change_done", ADMIN, url("password_change_done")),
    Visit(NOT_FOUND, REVIEWER, lambda d: "/no-such-page/", status=404),
    # Last for its role: it ends the session the other visits share.
    Visit("logout", REVIEWER, trace_list, "signed out", then=_sign_out),
]

API = "an MLflow or OTLP endpoint: JSON for programs, no page"
DOWNLOAD = "a file download, no page"
FRAGMENTS = "POST only: answers with the review page's fragments (swept there)"
EXEMPT = {
    "mlflow-version": API,
    "health": API,
    "otlp-traces": API,
    "annotation:assessment-create": FRAGMENTS,
    "annotation:assessment-edit": FRAGMENTS,
    "annotation:assessment-override": FRAGMENTS,
    "annotation:assessment-delete": FRAGMENTS,
    "annotation:assessment-restore": FRAGMENTS,
    "annotation:overview-index": "redirects to the newest experiment's overview (swept)",
    "annotation:queue-next": "POST only: redirects to the next queue item (swept)",
    "annotation:queue-skip": "POST only: redirects to the next queue item (swept)",
    "annotation:queue-status": "POST only: redirects to the queue page (swept)",
    "annotation:queue-item-reopen": "POST only: redirects to the queue page (swept)",
    "annotation:queue-reassign": "POST only: redirects to the queue page (swept)",
    "annotation:queue-add-sessions": "POST only: redirects to the queue page (swept)",
    "annotation:queue-item-activity": "POST only: the queue item's heartbeat, no content",
    "annotation:queue-assignments": DOWNLOAD,
    "annotation:judge-queue": "POST only: redirects to the new queue, or the judge page (swept)",
    "annotation:judge-dataset": "POST only: redirects to the dataset, or the judge page (swept)",
    "annotation:judge-pairs": DOWNLOAD,
    "annotation:dataset-export": DOWNLOAD,
    "annotation:export-download": DOWNLOAD,
    "accounts:annotator-role": "POST only: redirects to the annotator page (swept)",
    "accounts:annotator-active": "POST only: redirects to the annotator page (swept)",
    "accounts:token-create": "POST only: the annotator page with the new token (swept)",
    "accounts:token-revoke": "POST only: redirects to the annotator page (swept)",
    "traces:span-children": "htmx fragment of the span tree, swept inside the review page",
    "traces:attachment": DOWNLOAD,
}
EXEMPT_NAMESPACES = {"admin": "Django's own admin site, styled and tested by Django"}


def _named_urls(patterns, namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_urls(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}"


def test_every_named_url_is_swept_or_exempt():
    names = {
        name
        for name in _named_urls(get_resolver().url_patterns)
        if name.split(":")[0] not in EXEMPT_NAMESPACES
    }
    swept = {visit.name for visit in VISITS} - {NOT_FOUND}
    assert names - swept - set(EXEMPT) == set(), "add a Visit for each new page, or exempt it"
    assert (swept | set(EXEMPT)) - names == set(), "a swept or exempt URL name no longer exists"
    assert swept & set(EXEMPT) == set()


def _demo() -> SimpleNamespace:
    """The demo data, and a disagreement on its queue for an Admin to decide."""
    call_command("seed_demo", password=PASSWORD, stdout=io.StringIO())
    people = {user.username: user for user in get_user_model().objects.all()}
    queue = Queue.objects.get(name=DEMO_QUEUE)
    for username, helpful in (("ravi", True), ("rosa", False)):
        turn = queues.next_assignment(queue=queue, user=people[username])
        answers = {"helpful": helpful, "policy_followed": True}
        queues.submit(assignment=turn, values=answers, actor=people[username])
    experiment = Experiment.objects.get(name="bookshop-support-prod")
    [judge, *_] = judge_report.build(experiment, user=people["admin"])
    return SimpleNamespace(
        queue=queue,
        span_queue=Queue.objects.get(name=SPAN_QUEUE),
        control_queue=Queue.objects.get(name=CONTROL_QUEUE),
        session_queue=Queue.objects.get(name=SESSION_QUEUE),
        disagreement=queues.disagreements(queue)[0],
        experiment=experiment,
        judge=judge.key,
        trace=Trace.objects.filter(state=Trace.State.OK, span_count__gt=3).order_by("pk")[0],
        failed=Trace.objects.filter(state=Trace.State.ERROR).order_by("pk")[0],
        revised=AssessmentRevision.objects.filter(version=2)
        .select_related("assessment")[0]
        .assessment,
        run=Run.objects.order_by("pk")[0],
        dataset=EvaluationDataset.objects.order_by("pk")[0],
        schema=LabelSchema.objects.order_by("pk")[0],
        rita=people["rita"].pk,
        uid=urlsafe_base64_encode(force_bytes(people["rita"].pk)),
        token=default_token_generator.make_token(people["rita"]),
    )


def _signed_in(browser, live_server, username):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    if username:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
    return Auditor(page)


@pytest.mark.django_db(transaction=True)
def test_every_page_passes_axe_without_sideways_scroll_or_console_errors(browser, live_server):
    started = time.perf_counter()
    demo = _demo()
    seeded = time.perf_counter()
    auditors, findings, wrong_pages = {}, [], []
    for visit in VISITS:
        if visit.role not in auditors:
            auditors[visit.role] = _signed_in(browser, live_server, visit.role)
        auditor = auditors[visit.role]
        auditor.page.goto(live_server.url + visit.path(demo))
        if visit.then:
            visit.then(auditor.page)
        path = urlsplit(auditor.page.url).path
        if visit.name != NOT_FOUND and resolve(path).view_name != visit.name:
            wrong_pages.append(f"{visit.label} ended on {path}")
        findings.append(auditor.audit(visit.label, status=visit.status))
    print(f"\nSeeded in {seeded - started:.1f} s, swept in {time.perf_counter() - seeded:.1f} s")
    print("page (critical serious moderate minor, scroll width)")
    print("\n".join(finding.summary() for finding in findings))
    problems = [f"{f.label}:\n  " + "\n  ".join(f.problems()) for f in findings if f.problems()]
    assert not wrong_pages + problems, "\n".join(wrong_pages + problems)
