import os
import time

from django.core.management.base import BaseCommand

from annotation.demo import seed
from annotation.models import Assessment, AssessmentRevision
from traces.models import Span, Trace


class Command(BaseCommand):
    help = (
        "Load demo experiments, ~300 traces with span trees, reviewers and feedback. "
        "Run once after `migrate` to explore Tracemark; running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD", "tracemark"),
            help="Password for the demo accounts (default: $DEMO_PASSWORD or 'tracemark').",
        )

    def handle(self, *args, password: str, **options):
        started = time.perf_counter()
        report = seed(password=password)
        elapsed = time.perf_counter() - started
        made = ", ".join(f"{n} {kind}" for kind, n in report.created.items() if n) or "nothing new"
        totals = (
            f"{Trace.objects.count()} traces, {Span.objects.count()} spans, "
            f"{Assessment.objects.count()} assessments, "
            f"{AssessmentRevision.objects.count()} revisions"
        )
        self.stdout.write(f"Demo data: created {made} in {elapsed:.1f}s ({totals}).")
        self.stdout.write(
            f"Sign in as admin / {password} (reviewers rita, ravi, rosa; viewer vera; "
            "same password)."
        )
