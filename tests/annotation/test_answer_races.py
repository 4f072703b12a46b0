"""Races the database must settle: one live answer per annotator, one live override per entry,
and edits that lose to a delete. Each round starts two writers at the same moment."""

import threading

from django.db import connection
from django.test import Client, TransactionTestCase
from django.urls import reverse

from accounts.tokens import create_token
from annotation import services
from annotation.models import Assessment, LabelSchema, SourceType
from tests.factories import make_reviewer, make_trace

ROUNDS = 30
HTMX = {"HX-Request": "true"}


def race(*calls):
    """Run each call in its own thread and connection, released together; return outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as exc:  # kept: the test asserts on what each writer saw
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


class AnswerRaceTests(TransactionTestCase):
    def setUp(self):
        self.reviewer = make_reviewer(username="rita")
        LabelSchema.objects.create(name="thumbs", value_type="boolean")

    def live(self, trace, **filters):
        return Assessment.objects.live().filter(trace=trace, valid=True, **filters).count()

    def test_two_concurrent_answers_from_one_person_leave_one(self):
        doubled, refusals = 0, []
        for _ in range(ROUNDS):
            trace = make_trace()

            def answer(trace=trace):
                return services.log_feedback(
                    trace=trace, name="thumbs", value=True, actor=self.reviewer
                )

            outcomes = race(answer, answer)
            doubled += self.live(trace, name="thumbs") > 1
            refusals += [o.code for o in outcomes if not isinstance(o, Assessment)]
        self.assertEqual(doubled, 0, f"two live answers in {doubled} of {ROUNDS} rounds")
        self.assertEqual(refusals, ["duplicate"] * ROUNDS)

    def test_a_double_clicked_widget_saves_one_answer_and_explains_the_other(self):
        doubled, statuses, explained = 0, [], 0
        for _ in range(ROUNDS):
            trace = make_trace()
            url = reverse("annotation:assessment-create", args=[trace.trace_id])

            def click(trace=trace, url=url):
                client = Client()
                client.force_login(self.reviewer)
                return client.post(url, {"schema": "thumbs", "value": "true"}, headers=HTMX)

            responses = race(click, click)
            doubled += self.live(trace, name="thumbs") > 1
            statuses += [r.status_code for r in responses]
            explained += sum(b"You already gave" in r.content for r in responses)
        self.assertEqual(doubled, 0, f"two live answers in {doubled} of {ROUNDS} rounds")
        self.assertEqual((statuses, explained), ([200] * 2 * ROUNDS, ROUNDS))

    def test_two_concurrent_api_overrides_of_one_judge_entry_leave_one_and_409(self):
        api = {"Authorization": f"Bearer {create_token(user=self.reviewer)[1]}"}
        doubled, statuses, codes = 0, [], []
        for _ in range(ROUNDS):
            trace = make_trace()
            judge = services.log_feedback(
                trace=trace, name="correct", value=False, source_type=SourceType.LLM_JUDGE
            )
            body = {
                "assessment": {
                    "assessment_name": "correct",
                    "feedback": {"value": True},
                    "source": {"source_type": "HUMAN", "source_id": "rita"},
                    "overrides": judge.assessment_id,
                }
            }
            url = f"/api/3.0/mlflow/traces/{trace.trace_id}/assessments"

            def override(url=url, body=body):
                return Client(headers=api).post(url, body, content_type="application/json")

            responses = race(override, override)
            doubled += Assessment.objects.live().filter(overrides=judge).count() > 1
            statuses.append(sorted(r.status_code for r in responses))
            codes += [r.json()["error_code"] for r in responses if r.status_code != 200]
        self.assertEqual(doubled, 0, f"two live overrides in {doubled} of {ROUNDS} rounds")
        self.assertEqual(statuses, [[200, 409]] * ROUNDS)
        self.assertEqual(codes, ["RESOURCE_CONFLICT"] * ROUNDS)

    def test_an_edit_racing_a_delete_gets_a_message_never_a_server_error(self):
        errors, outcomes = 0, []
        for _ in range(ROUNDS):
            trace = make_trace()
            thumbs = services.log_feedback(
                trace=trace, name="thumbs", value=True, actor=self.reviewer
            )
            edit = reverse("annotation:assessment-edit", args=[thumbs.assessment_id])
            delete = reverse("annotation:assessment-delete", args=[thumbs.assessment_id])

            def post(url, data):
                client = Client()
                client.force_login(self.reviewer)
                return client.post(url, data, headers=HTMX)

            edited, deleted = race(
                lambda edit=edit: post(edit, {"value": "false", "version": "1"}),
                lambda delete=delete: post(delete, {"version": "1"}),
            )
            if isinstance(edited, Exception) or isinstance(deleted, Exception):
                errors += 1
            elif "assessment-saved" in edited.headers.get("HX-Trigger", ""):
                outcomes.append(b"Someone else saved this entry" in deleted.content)
            else:
                saved = "assessment-saved" in deleted.headers.get("HX-Trigger", "")
                outcomes.append(saved and b"deleted by someone else" in edited.content)
        self.assertEqual(errors, 0, f"a server error in {errors} of {ROUNDS} rounds")
        self.assertEqual(outcomes, [True] * ROUNDS)
