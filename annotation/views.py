"""The trace review page and the assessment writes made from it.

The page composes a trace's span tree (``traces.span_views``) with every assessment on the
trace and its spans that the reader may see: a blind queue hides others' answers from
someone still labeling the trace there (``queues.hidden_answers``), here and in the
history alike. Writes go through ``annotation.services``, whose ``permits`` also decides
which edit, override, delete and restore forms each card offers. With htmx, a write answers with
the changed assessments region (the trace's, or one span's) and emits ``assessment-saved``;
without it, POST redirects back to the page. Invalid input and conflicts re-render the
region (htmx) or the whole page, keeping what the reviewer typed, with status 200.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from accounts.roles import can_write, write_required
from traces.filters import TraceFilter
from traces.models import Span, Trace
from traces.pagination import DEFAULT_SORT, Cursor
from traces.runs import run_of
from traces.span_detail import describe_span, show_value
from traces.tree import load_selected_span, opening_span, tree_context

from . import queues, services
from .forms import (
    AssessmentForm,
    NamedAssessmentForm,
    ReviewQueryForm,
    TargetForm,
    VersionForm,
    form_for,
    initial_value,
)
from .models import Assessment, AssessmentRevision, Kind, LabelSchema, SourceType, session_of

TEMPLATE = "annotation/trace_review.html"
TRACE_REGION = "assessments-trace"
SPAN_SUMMARY = "span-summary"


def is_editable(a: Assessment) -> bool:
    """People edit human entries and expectations; a judge's or code's feedback is overridden.

    Issue references link to an issue by its id and name, which are not edited here."""
    if a.kind == Kind.ISSUE:
        return False
    return a.source_type == SourceType.HUMAN or a.kind == Kind.EXPECTATION


def is_overridable(a: Assessment) -> bool:
    return a.kind == Kind.FEEDBACK and a.source_type != SourceType.HUMAN and a.valid


@dataclass
class Bound:
    """A submitted form shown again (with errors, or after a conflict) in place of a fresh one."""

    key: str
    form: object = None
    conflict: services.ConflictError | None = None
    shown: bool = False


@dataclass
class Entry:
    assessment: Assessment
    shown: dict
    mine: bool
    schema: LabelSchema | None = None
    overrides: Assessment | None = None
    overridden_by: Assessment | None = None
    edit_form: AssessmentForm | None = None
    override_form: AssessmentForm | None = None
    # The reader's own answer to this question, which an override would duplicate.
    yours: Assessment | None = None
    can_delete: bool = False
    can_restore: bool = False
    conflict: services.ConflictError | None = None
    conflict_shown: dict | None = None
    conflict_mine: str | None = None
    open: str = ""

    @property
    def key(self) -> str:
        return self.assessment.assessment_id

    @property
    def updated_at(self) -> datetime:
        return datetime.fromtimestamp(self.assessment.last_update_time / 1000, tz=UTC)

    @property
    def changed_by(self) -> str:
        """Who last changed the entry, when not the one who made it (e.g. who overrode it)."""
        a = self.assessment
        return a.changed_by if a.changed_by and a.changed_by != a.created_by else ""

    def offers(self, action: str) -> bool:
        """Whether the card shows the form that ``action`` (a submitted form's key) sends."""
        return {
            "edit": self.edit_form is not None,
            "override": self.override_form is not None,
            "delete": self.can_delete,
            "restore": self.can_restore,
        }.get(action, False)


@dataclass
class Widget:
    schema: LabelSchema
    form: AssessmentForm
    action: str
    key: str
    current: Assessment | None = None


@dataclass
class Region:
    """The assessments on one target (the trace or one span) and the widgets to add more."""

    trace: Trace
    span: Span | None
    groups: list[tuple[str, list[Entry]]] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    named_form: NamedAssessmentForm | None = None
    writable: bool = False
    # Blind queues hiding others' answers here from the reader, for the notice.
    blindings: tuple[queues.Blinding, ...] = ()
    # Errors of a submitted form that has no place in this region (e.g. a schema that
    # does not apply here), shown at its top.
    errors: list[str] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        return f"assessments-span-{self.span.span_id}" if self.span else TRACE_REGION

    @property
    def span_id(self) -> str:
        return self.span.span_id if self.span else ""

    @property
    def named_key(self) -> str:
        return f"named-{self.dom_id}"


def _get_trace_for_user(request, trace_id) -> Trace:
    """Every signed-in user reads every trace; ``write_required`` guards the writes."""
    return get_object_or_404(Trace.objects.select_related("experiment"), trace_id=trace_id)


def _get_assessment_for_user(request, assessment_id) -> Assessment:
    """Deleted ones too: a write on one that was deleted meanwhile explains what happened."""
    return get_object_or_404(
        Assessment.objects.select_related("trace"), assessment_id=assessment_id
    )


def _review_url(trace: Trace, span_id: str | None = None) -> str:
    url = trace.get_absolute_url()
    return f"{url}?{urlencode({'span': span_id})}" if span_id else url


def _schema_applies(schema: LabelSchema, span: Span | None) -> bool:
    """Whether the schema is offered on this target; ``schema`` comes annotated by
    ``with_experiment_scope`` for the trace's experiment."""
    if not schema.in_experiment:
        return False
    if span is None:
        return schema.applies_to != LabelSchema.AppliesTo.SPAN
    if schema.applies_to == LabelSchema.AppliesTo.TRACE:
        return False
    return not schema.span_types or span.span_type in schema.span_types


def _current_of(user, schema: LabelSchema, assessments) -> Assessment | None:
    """The reviewer's own live answer for a one-per-annotator schema: the widget edits it.
    An answer about a whole session stored on this turn is not an answer about the turn."""
    if not schema.one_per_annotator:
        return None
    for a in reversed(assessments):
        human = a.source_type == SourceType.HUMAN and a.annotator_id == user.pk
        about_turn = not session_of(a.metadata)
        if human and about_turn and a.name == schema.name and a.valid and not a.is_deleted:
            return a
    return None


def _fresh_form(schema, assessment, key, *, prefill=True) -> AssessmentForm:
    """A form shaped by the schema, or by the assessment's value without one; ``prefill``
    starts it from the assessment's value and rationale (an edit, not an override)."""
    initial = {"key": key}
    if assessment is not None:
        initial["version"] = assessment.version
    if assessment is not None and prefill:
        initial.update(value=initial_value(assessment.value), rationale=assessment.rationale)
    return form_for(
        schema, assessment.value if assessment else None, initial=initial, auto_id=f"{key}-%s"
    )


def _entry(assessment, schemas, user, writer, by_pk, overriders, bound, yours) -> Entry:
    """A card, with the forms its reader may use: the services enforce the same rule.
    ``yours`` maps a question to the reader's own answer here: overriding another entry of
    it would give a second one, so the card points to that answer instead."""
    schema = schemas.get(assessment.name)
    entry = Entry(
        assessment=assessment,
        shown=show_value(assessment.value),
        mine=assessment.annotator_id == user.pk,
        schema=schema,
        overrides=by_pk.get(assessment.overrides_id),
        overridden_by=overriders.get(assessment.pk),
    )
    if not writer:
        return entry
    if assessment.is_deleted:
        entry.can_restore = services.permits(user, services.RESTORE, assessment)
    else:
        entry.can_delete = services.permits(user, services.DELETE, assessment)
        if is_editable(assessment) and services.permits(user, services.UPDATE, assessment):
            entry.edit_form = _fresh_form(schema, assessment, f"edit-{entry.key}")
        if is_overridable(assessment) and services.permits(user, services.OVERRIDE, assessment):
            entry.yours = yours.get(assessment.name)
            if entry.yours is None:
                entry.override_form = _fresh_form(
                    schema, assessment, f"override-{entry.key}", prefill=False
                )
    if bound is not None and bound.key.endswith(entry.key):
        action = bound.key.removesuffix(f"-{entry.key}")
        if entry.offers(action):
            _apply_bound(entry, action, bound)
            bound.shown = True
    return entry


def _apply_bound(entry: Entry, action: str, bound: Bound) -> None:
    entry.open = action
    if action == "edit":
        entry.edit_form = bound.form
    elif action == "override":
        entry.override_form = bound.form
    if bound.conflict is not None:
        current = bound.conflict.current
        entry.conflict = bound.conflict
        entry.conflict_shown = show_value(current.value)
        if bound.form is not None:
            entry.conflict_mine = bound.form.data.get("value")
            # "Keep mine" resubmits the reviewer's input on top of the version they now saw.
            bound.form.data = bound.form.data.copy()
            bound.form.data["version"] = str(current.version)


def _build_region(request, trace, span, seen, schemas, bound=None) -> Region:
    writer = can_write(request.user)
    assessments = seen.assessments
    target = [a for a in assessments if a.span_id == (span.span_id if span else None)]
    by_pk = {a.pk: a for a in assessments}
    overriders = {a.overrides_id: a for a in target if a.overrides_id and not a.is_deleted}
    region = Region(trace=trace, span=span, writable=writer, blindings=seen.blindings)
    yours = {
        name: current
        for name, schema in schemas.items()
        if (current := _current_of(request.user, schema, target))
    }
    groups: dict[str, list[Entry]] = {}
    for a in target:
        entry = _entry(a, schemas, request.user, writer, by_pk, overriders, bound, yours)
        groups.setdefault(a.name, []).append(entry)
    region.groups = list(groups.items())
    if not writer:
        return region
    create_url = reverse("annotation:assessment-create", args=[trace.trace_id])
    for schema in schemas.values():
        if _schema_applies(schema, span):
            key = f"w-{region.dom_id}-{schema.pk}"
            current = yours.get(schema.name)
            form = _fresh_form(schema, current, key)
            if bound and bound.key == key:
                form, bound.shown = bound.form, True
            action = (
                reverse("annotation:assessment-edit", args=[current.assessment_id])
                if current
                else create_url
            )
            region.widgets.append(Widget(schema, form, action, key, current))
    if bound and bound.key == region.named_key:
        region.named_form, bound.shown = bound.form, True
    else:
        region.named_form = NamedAssessmentForm(
            initial={"key": region.named_key}, auto_id=f"{region.named_key}-%s"
        )
    if bound and not bound.shown and bound.form is not None:
        region.errors = [e for errors in bound.form.errors.values() for e in errors]
    return region


@dataclass
class Seen:
    """The assessments on a trace and its spans that the reader may see, deleted ones too
    (they can be restored), and the blind queues hiding the others."""

    assessments: list[Assessment]
    blindings: tuple[queues.Blinding, ...]


def _seen(request, trace: Trace) -> Seen:
    hidden = queues.hidden_answers(user=request.user, traces=[trace])
    found = (
        trace.assessments.with_editors().select_related("annotator").order_by("create_time", "id")
    )
    return Seen([a for a in found if not hidden.hides(a)], hidden.blindings_for(trace.pk))


def _schemas(trace: Trace) -> dict[str, LabelSchema]:
    """Every schema, as entries of any name take their shape from it; widgets are offered
    only for those that apply to the trace's experiment."""
    schemas = LabelSchema.objects.with_experiment_scope(trace.experiment_id).order_by("name")
    return {s.name: s for s in schemas}


def _span_summary(trace: Trace, assessments, schemas) -> list[dict]:
    """Live assessments on spans, with their schemas, grouped by span, for the overview
    beside the tree."""
    by_span: dict[str, list[Assessment]] = {}
    for a in assessments:
        if a.span_id and not a.is_deleted:
            by_span.setdefault(a.span_id, []).append(a)
    if not by_span:
        return []
    names = dict(
        Span.objects.filter(trace=trace, span_id__in=by_span).values_list("span_id", "name")
    )
    return [
        {
            "span_id": span_id,
            "name": names.get(span_id, span_id),
            "answers": [(a, schemas.get(a.name)) for a in items],
        }
        for span_id, items in by_span.items()
    ]


def _neighbours(request, trace: Trace, from_query: str) -> tuple[Trace | None, Trace | None]:
    """The previous and next trace in the list the reviewer came from.

    ``from_query`` is the trace list's query string: its filters and sort apply. Without it,
    the neighbours are the same experiment's traces, newest first (the list's default).
    """
    queryset, sort = Trace.objects.filter(experiment_id=trace.experiment_id), DEFAULT_SORT
    if from_query:
        listed = TraceFilter(QueryDict(from_query), queryset=Trace.objects.all(), request=request)
        queryset, sort = listed.qs, listed.sort_order
        if getattr(trace, sort.field) is None:
            sort = DEFAULT_SORT
    here = Cursor(sort.key, getattr(trace, sort.field), trace.trace_id)
    queryset = queryset.only("trace_id")
    following = queryset.filter(sort.beyond(here)).order_by(*sort.ordering()).first()
    backwards = queryset.filter(sort.beyond(here, backwards=True))
    previous = backwards.order_by(*sort.ordering(backwards=True)).first()
    return previous, following


def _chain_url(trace: Trace | None, from_query: str, back: list[str]) -> str:
    """A neighbour's review URL, carrying the list it belongs to and the trail behind it."""
    if trace is None:
        return ""
    params = {"from": from_query, "back": ",".join(back)}
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{trace.get_absolute_url()}?{query}" if query else trace.get_absolute_url()


def _chain(request, trace: Trace, from_query: str, back: list[str]) -> dict:
    """Previous and next links. "Previous" walks the trail of "Next" back first: a trace the
    reviewer just labeled may have left the filtered list (e.g. "Not reviewed by me")."""
    previous, following = _neighbours(request, trace, from_query)
    trail = back[:-1]
    if back:
        retraced = Trace.objects.filter(trace_id=back[-1]).only("trace_id").first()
        previous, trail = (retraced, trail) if retraced else (previous, [])
    return {
        "previous": previous,
        "following": following,
        "previous_url": _chain_url(previous, from_query, trail),
        "following_url": _chain_url(following, from_query, [*back, trace.trace_id]),
    }


def _review_context(
    request, trace, span_id=None, from_query="", bound=None, back=(), tree_options=None
) -> dict:
    tree_options = tree_options or {}
    span = opening_span(trace, span_id, tree_options.get("next_error", False))
    seen = _seen(request, trace)
    schemas = _schemas(trace)
    return {
        "trace": trace,
        **tree_context(trace, span, **tree_options),
        "span": span,
        "detail": describe_span(span) if span else None,
        "trace_region": _build_region(request, trace, None, seen, schemas, bound),
        "span_region": span and _build_region(request, trace, span, seen, schemas, bound),
        "span_summary": _span_summary(trace, seen.assessments, schemas),
        **_chain(request, trace, from_query, list(back)),
        "from_query": from_query,
        "can_write": can_write(request.user),
        "run": run_of(trace),
    }


def _partial_for(target: str | None) -> str:
    if target in (TRACE_REGION, SPAN_SUMMARY):
        return "trace-assessments" if target == TRACE_REGION else SPAN_SUMMARY
    return "span-panel"


@require_GET
@login_required
@vary_on_headers("HX-Request", "HX-Target")
def trace_review(request, trace_id):
    trace = _get_trace_for_user(request, trace_id)
    query = ReviewQueryForm(request.GET)
    query.is_valid()
    span_id, from_query = query.cleaned_data.get("span"), query.cleaned_data.get("from_", "")
    back = query.cleaned_data.get("back") or []
    options = query.tree_options()
    context = _review_context(request, trace, span_id, from_query, back=back, tree_options=options)
    template_name = TEMPLATE
    if request.htmx and not request.htmx.boosted:
        template_name += "#" + _partial_for(request.htmx.target)
    return render(request, template_name, context)


def _respond(request, trace, span, assessment=None, bound=None, action="save"):
    """After a write: the region (htmx) or a redirect; after a failure: the form again.
    ``action`` (save, edit, override, delete, restore) rides on ``assessment-saved`` so the
    page can say what happened."""
    span_id = span.span_id if span else None
    if assessment is not None and not request.htmx:
        return redirect(f"{_review_url(trace, span_id)}#{assessment.assessment_id}")
    if not request.htmx:
        return render(request, TEMPLATE, _review_context(request, trace, span_id, bound=bound))
    region = _build_region(request, trace, span, _seen(request, trace), _schemas(trace), bound)
    response = render(request, f"{TEMPLATE}#assessments", {"region": region, "trace": trace})
    if assessment is not None:
        payload = {
            "assessment_id": assessment.assessment_id,
            "span_id": span_id or "",
            "action": action,
        }
        trigger_client_event(response, "assessment-saved", payload)
    return response


def _target_span(trace, span_id) -> Span | None:
    return load_selected_span(trace, span_id) if span_id else None


def _log(form, trace, span, schema, user) -> Assessment:
    if schema is not None and not _schema_applies(schema, span):
        raise ValidationError(f"'{schema}' does not apply here.", code="wrong_target")
    data = form.cleaned_data
    kind = schema.kind if schema else data["kind"]
    log = services.log_expectation if kind == Kind.EXPECTATION else services.log_feedback
    return log(
        trace=trace,
        name=schema.name if schema else data["name"],
        value=data["value"],
        span_id=span.span_id if span else None,
        rationale=data["rationale"],
        actor=user,
    )


@require_POST
@login_required
@write_required
def assessment_create(request, trace_id):
    trace = _get_trace_for_user(request, trace_id)
    target = TargetForm(request.POST)
    target.is_valid()
    span = _target_span(trace, target.cleaned_data.get("span_id"))
    name = target.cleaned_data.get("schema")
    scoped = LabelSchema.objects.with_experiment_scope(trace.experiment_id)
    schema = get_object_or_404(scoped, name=name) if name else None
    form = form_for(schema, data=request.POST) if schema else NamedAssessmentForm(request.POST)
    if form.is_valid():
        try:
            return _respond(request, trace, span, _log(form, trace, span, schema, request.user))
        except ValidationError as exc:
            form.add_error(None, exc)
    region_id = f"assessments-span-{span.span_id}" if span else TRACE_REGION
    default_key = f"w-{region_id}-{schema.pk}" if schema else f"named-{region_id}"
    return _respond(request, trace, span, bound=Bound(form.data.get("key") or default_key, form))


def _submit(request, assessment, form, write, action):
    """Validate the form, write through the service, and answer with the outcome."""
    trace = assessment.trace
    span = _target_span(trace, assessment.span_id)
    key = form.data.get("key") or f"{action}-{assessment.assessment_id}"
    bound = Bound(key, form)
    if form.is_valid():
        try:
            return _respond(request, trace, span, write(form.cleaned_data), action=action)
        except services.ConflictError as exc:
            # Shown on the entry itself, whichever widget sent it, with both values.
            bound.key, bound.conflict = f"{action}-{assessment.assessment_id}", exc
        except ValidationError as exc:
            form.add_error(None, exc)
        except Assessment.DoesNotExist:
            # The service found it deleted (or, for a restore, restored) since the page
            # was read, perhaps by a write that finished a moment ago. The entry no longer
            # offers this action, so the message goes to the top of the region.
            form.add_error(None, _GONE.get(action, _GONE["edit"]))
            bound.key = ""
    return _respond(request, trace, span, bound=bound)


_GONE = {
    "edit": "This entry was deleted by someone else; restore it to change it.",
    "restore": "This entry was restored by someone else already.",
}


def _schema_form(request, assessment) -> AssessmentForm:
    schema = LabelSchema.objects.filter(name=assessment.name).first()
    return form_for(schema, assessment.value, data=request.POST, editing=True)


@require_POST
@login_required
@write_required
def assessment_edit(request, assessment_id):
    assessment = _get_assessment_for_user(request, assessment_id)

    def write(data):
        if not is_editable(assessment):
            raise ValidationError("Feedback from a judge or code is overridden, not edited.")
        return services.update_assessment(
            assessment_id=assessment_id,
            actor=request.user,
            expected_version=data["version"],
            value=data["value"],
            rationale=data["rationale"],
        )

    return _submit(request, assessment, _schema_form(request, assessment), write, "edit")


@require_POST
@login_required
@write_required
def assessment_override(request, assessment_id):
    """Replace a judge's (or code's) feedback with the reviewer's; the old one stays, invalid."""
    assessment = _get_assessment_for_user(request, assessment_id)

    def write(data):
        if not is_overridable(assessment):
            raise ValidationError("Only valid feedback from a judge or code can be overridden.")
        return services.override_feedback(
            assessment_id=assessment_id,
            value=data["value"],
            rationale=data["rationale"],
            actor=request.user,
            expected_version=data["version"],
        )

    return _submit(request, assessment, _schema_form(request, assessment), write, "override")


@require_POST
@login_required
@write_required
def assessment_delete(request, assessment_id):
    assessment = _get_assessment_for_user(request, assessment_id)

    def write(data):
        return services.delete_assessment(
            assessment_id=assessment_id, actor=request.user, expected_version=data["version"]
        )

    return _submit(request, assessment, VersionForm(request.POST), write, "delete")


@require_POST
@login_required
@write_required
def assessment_restore(request, assessment_id):
    assessment = _get_assessment_for_user(request, assessment_id)

    def write(data):
        return services.restore(
            assessment_id=assessment_id, actor=request.user, expected_version=data["version"]
        )

    return _submit(request, assessment, VersionForm(request.POST), write, "restore")


def _history_rows(revisions) -> list[dict]:
    """Each revision with the value before and after it, newest first."""
    rows, before = [], None
    for revision in revisions:
        after = revision.snapshot
        rows.append(
            {
                "revision": revision,
                "old": show_value(before["value"]) if before else None,
                "old_value": before["value"] if before else None,
                "new": show_value(after.get("value")),
                "new_value": after.get("value"),
                "value_changed": before is None or before.get("value") != after.get("value"),
                "rationale_changed": before is not None
                and before.get("rationale") != after.get("rationale"),
                "rationale": after.get("rationale", ""),
            }
        )
        before = after
    return rows[::-1]


@require_GET
@login_required
@vary_on_headers("HX-Request")
def assessment_history(request, assessment_id):
    assessment = get_object_or_404(
        Assessment.objects.select_related("trace"), assessment_id=assessment_id
    )
    hidden = queues.hidden_answers(user=request.user, traces=[assessment.trace])
    blinded = hidden.hides(assessment)
    revisions = AssessmentRevision.objects.filter(assessment=assessment).order_by("version")
    context = {
        "assessment": assessment,
        "schema": LabelSchema.objects.filter(name=assessment.name).first(),
        "rows": [] if blinded else _history_rows(revisions.select_related("actor")),
        "blindings": hidden.blindings_for(assessment.trace_id) if blinded else (),
        "review_url": _review_url(assessment.trace, assessment.span_id),
    }
    template_name = "annotation/assessment_history.html"
    if request.htmx and not request.htmx.boosted:
        template_name += "#history"
    return render(request, template_name, context)
