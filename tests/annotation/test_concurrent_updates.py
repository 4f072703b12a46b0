import threading

from django.db import connection
from django.test import TransactionTestCase

from annotation import services
from annotation.models import Assessment
from tests.factories import make_reviewer, make_trace

THREADS = 8
ATTEMPTS_PER_THREAD = 5


class ConcurrentUpdateTests(TransactionTestCase):
    """Eight reviewers race to edit one assessment; version checks must lose no update."""

    def test_every_accepted_write_has_its_revision_and_no_update_is_lost(self):
        reviewer = make_reviewer()
        rating = services.log_feedback(trace=make_trace(), name="rating", value=-1, actor=reviewer)
        barrier = threading.Barrier(THREADS)
        accepted, conflicts, failures = [], [], []
        lock = threading.Lock()

        def edit(thread_no):
            try:
                barrier.wait()
                for attempt in range(ATTEMPTS_PER_THREAD):
                    value = thread_no * 100 + attempt
                    seen = Assessment.objects.get(pk=rating.pk).version
                    try:
                        services.update_assessment(
                            assessment_id=rating.assessment_id,
                            value=value,
                            expected_version=seen,
                            actor=reviewer,
                        )
                    except services.ConflictError:
                        with lock:
                            conflicts.append(value)
                    else:
                        with lock:
                            accepted.append(value)
            except Exception as exc:  # surfaced below: a thread must not fail silently
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=edit, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        self.assertEqual(failures, [])
        self.assertEqual(len(accepted) + len(conflicts), THREADS * ATTEMPTS_PER_THREAD)
        final = Assessment.objects.get(pk=rating.pk)
        self.assertEqual(final.version, len(accepted) + 1)
        revisions = list(final.revisions.order_by("version"))
        self.assertEqual([r.version for r in revisions], list(range(1, len(accepted) + 2)))
        self.assertEqual(sorted(r.snapshot["value"] for r in revisions[1:]), sorted(accepted))
        self.assertEqual(final.value, revisions[-1].snapshot["value"])
        self.assertTrue(set(conflicts).isdisjoint(r.snapshot["value"] for r in revisions))
