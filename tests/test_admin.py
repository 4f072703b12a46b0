from django.contrib import admin
from django.test import TestCase
from django.urls import reverse

from accounts.tokens import create_token
from annotation import services
from annotation.models import LabelSchema, Queue, QueueAssignment, QueueItem
from tests.factories import make_admin, make_span, make_trace


class AdminPagesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss", is_staff=True, is_superuser=True)
        trace = make_trace()
        make_span(trace)
        feedback = services.log_feedback(trace=trace, name="helpful", value=True)
        services.update_assessment(assessment_id=feedback.assessment_id, value=False)
        LabelSchema.objects.create(name="helpful", value_type="boolean")
        create_token(user=cls.admin, name="ci")
        queue = Queue.objects.create(name="q", created_by=cls.admin)
        item = QueueItem.objects.create(queue=queue, trace=trace, position=1)
        QueueAssignment.objects.create(item=item, annotator=cls.admin)

    def setUp(self):
        self.client.force_login(self.admin)

    def test_every_model_has_a_working_list_and_detail_page(self):
        for model in admin.site._registry:
            meta = model._meta
            with self.subTest(model=meta.label):
                changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
                self.assertEqual(self.client.get(changelist).status_code, 200)
                obj = model.objects.first()
                if obj is not None:
                    change = reverse(
                        f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]
                    )
                    self.assertEqual(self.client.get(change).status_code, 200)

    def test_assessments_and_revisions_are_read_only(self):
        from annotation.models import Assessment, AssessmentRevision

        for model in (Assessment, AssessmentRevision):
            model_admin = admin.site._registry[model]
            request = self.client.get("/").wsgi_request
            request.user = self.admin
            self.assertFalse(model_admin.has_add_permission(request))
            self.assertFalse(model_admin.has_change_permission(request, model.objects.first()))
            self.assertFalse(model_admin.has_delete_permission(request, model.objects.first()))
