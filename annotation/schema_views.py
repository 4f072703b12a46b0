"""Label schemas, for Admins: list, create and edit.

An edit that would make stored assessments fail validation is not saved until the Admin
has seen how many and confirmed; the stored values themselves are never changed.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import admin_required

from .models import Assessment, LabelSchema
from .schema_cache import schemas_changed
from .schema_forms import LabelSchemaForm


def _usage():
    return Subquery(
        Assessment.objects.live()
        .filter(name=OuterRef("name"))
        .values("name")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )


@require_GET
@login_required
@admin_required
def schema_list(request):
    schemas = LabelSchema.objects.annotate(used=_usage()).prefetch_related("experiments")
    return render(request, "annotation/schema_list.html", {"schemas": schemas})


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def schema_create(request):
    return _edit(request, LabelSchema())


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def schema_edit(request, schema_id):
    return _edit(request, get_object_or_404(LabelSchema, pk=schema_id))


def _edit(request, schema):
    creating = schema.pk is None
    form = LabelSchemaForm(request.POST or None, instance=schema)
    invalid = 0
    if request.method == "POST" and form.is_valid():
        invalid = form.invalid_existing()
        if not invalid or form.cleaned_data["confirm"]:
            with transaction.atomic():
                form.save()
                schemas_changed()
            verb = "created" if creating else "saved"
            messages.success(request, f"Schema '{schema.name}' {verb}.")
            return redirect("annotation:schema-list")
    context = {"form": form, "schema": schema, "creating": creating, "invalid": invalid}
    return render(request, "annotation/schema_form.html", context)
