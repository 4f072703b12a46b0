"""The export page and the download it links to, which scripts can call with a token.

Everyone who can see traces may export them, Viewers included: an export shows nothing the
trace list and review pages do not already show to the same user.
"""

from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from accounts.tokens import user_for_token

from .export import Export, ExportOptions, count_rows, export_filename, scope_for
from .models import Queue
from .queues import hidden_answers_condition


class ExportForm(forms.Form):
    """Export options; the trace list's filters ride along in the same query string."""

    format = forms.ChoiceField(
        choices=[("csv", "CSV, for spreadsheets"), ("jsonl", "JSON Lines, one object per line")],
        widget=forms.RadioSelect,
    )
    shape = forms.ChoiceField(
        choices=[
            ("long", "One row per assessment"),
            ("wide", "One row per trace, a column per assessment name"),
            ("revisions", "Revision history, one row per change"),
        ],
        widget=forms.RadioSelect,
    )
    include_inputs = forms.BooleanField(required=False, label="Root span inputs and outputs")
    include_invalid = forms.BooleanField(required=False, label="Overridden (invalid) entries")
    include_deleted = forms.BooleanField(required=False, label="Deleted entries")
    per_annotator = forms.BooleanField(
        required=False, label="A column per annotator (one row per trace only)"
    )
    bom = forms.BooleanField(required=False, label="Byte order mark, for Excel")
    raw = forms.BooleanField(
        required=False,
        label="Raw cells: no protection against spreadsheet formulas (for programs)",
    )
    queue = forms.ModelChoiceField(
        queryset=Queue.objects.all(), required=False, widget=forms.HiddenInput
    )

    @classmethod
    def from_query(cls, params):
        data = params.copy()
        data.setdefault("format", "csv")
        data.setdefault("shape", "long")
        return cls(data, label_suffix="")

    def options(self, *, user, scope) -> ExportOptions:
        """The chosen options for ``scope``; what a blind queue hides from ``user`` stays out
        of the file."""
        data = self.cleaned_data
        return ExportOptions(
            hidden=hidden_answers_condition(user=user),
            entries=scope.entries,
            format=data["format"],
            shape=data["shape"],
            include_inputs=data["include_inputs"],
            include_invalid=data["include_invalid"],
            include_deleted=data["include_deleted"],
            per_annotator=data["per_annotator"],
            bom=data["bom"],
            raw=data["raw"],
        )


def login_or_token_required(view):
    """Browsers sign in; scripts send ``Authorization: Bearer <token>`` (an API token).

    A request carrying a wrong or revoked token gets 401, never the login page, so a script
    fails loudly; a request with no credentials at all is sent to sign in.
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, raw = header.partition(" ")
            user = user_for_token(raw.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                response = HttpResponse(
                    "A valid API token is required.\n", status=401, content_type="text/plain"
                )
                response["WWW-Authenticate"] = 'Bearer realm="tracemark"'
                return response
            request.user = user
        elif not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@login_required
@vary_on_headers("HX-Request")
def export_page(request):
    """Choose what to export; htmx refreshes the summary (rows, file name) as options change."""
    form = ExportForm.from_query(request.GET)
    context = {"form": form, "scope": None, "error": None}
    if form.is_valid():
        try:
            scope = scope_for(request.GET, user=request.user, queue=form.cleaned_data["queue"])
        except ValidationError as exc:
            context["error"] = exc.messages
        else:
            options = form.options(user=request.user, scope=scope)
            filter_params = _filter_params(request.GET, scope)
            context.update(
                scope=scope,
                rows=count_rows(scope.traces, options),
                filename=export_filename(scope.parts, options, timezone.localdate()),
                filter_params=filter_params,
                list_query=urlencode(filter_params),
            )
    template_name = "annotation/export.html"
    if request.htmx and not request.htmx.boosted:
        template_name += "#export-summary"
    return render(request, template_name, context)


@require_GET
@login_or_token_required
def export_download(request):
    """Stream the export; bad options or filters get a plain-text 400 a script can print."""
    form = ExportForm.from_query(request.GET)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    try:
        scope = scope_for(request.GET, user=request.user, queue=form.cleaned_data["queue"])
    except ValidationError as exc:
        return HttpResponse("\n".join(exc.messages), status=400, content_type="text/plain")
    options = form.options(user=request.user, scope=scope)
    export = Export(scope.traces, options)
    response = StreamingHttpResponse(export, content_type=export.content_type)
    filename = export_filename(scope.parts, options, timezone.localdate())
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def _filter_params(params, scope) -> list[tuple[str, str]]:
    """The trace list's parameters in the query string, carried by the form as hidden inputs."""
    if scope.filterset is None:
        return []
    return [(name, value) for name in scope.filterset.filters for value in params.getlist(name)]
