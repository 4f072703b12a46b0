"""What the annotator pages (accounts.views) show of each person's labeling: how much,
how recently, how often they agree with others, and their pace and accuracy per queue.

``accounts`` sits beneath annotation and never imports it; it finds this module through
settings.TRACEMARK_ANNOTATOR_ACTIVITY, the way traces finds the blind-queue rule.
"""

from django.db.models import Count, DateTimeField, IntegerField, Max, OuterRef, Subquery

from . import quality
from .models import Assessment, AssessmentRevision
from .queues import agreement_by_annotator


def with_activity(people):
    """``people`` annotated with ``labeled`` (live assessments) and ``last_activity`` (their
    newest revision), in the same query."""
    labeled = (
        Assessment.objects.live()
        .filter(annotator=OuterRef("pk"))
        .order_by()
        .values("annotator")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last = (
        AssessmentRevision.objects.filter(actor=OuterRef("pk"))
        .order_by()
        .values("actor")
        .annotate(at=Max("created_at"))
        .values("at")
    )
    return people.annotate(
        labeled=Subquery(labeled, output_field=IntegerField()),
        last_activity=Subquery(last, output_field=DateTimeField()),
    )


def agreement_by_person() -> dict[int, tuple[int, int]]:
    """Person pk → (agreeing, compared): how often the others who answered agreed."""
    return agreement_by_annotator()


def queue_quality(person) -> list[quality.QueueQuality]:
    """The person's pace and accuracy on control items in each queue they worked in."""
    return quality.quality_of(person)
