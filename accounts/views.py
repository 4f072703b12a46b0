"""Annotators, for Admins: create or invite people, set roles, deactivate, API tokens,
password links; and the page a form posted with a stale CSRF token gets.

Deactivation never deletes: assessments and revisions stay attributed to the person.
A new API token's secret and an invitation or password link are shown once, in the response
to the POST that made them, and are never stored in readable form. Tracemark sends no
email: a person who forgot their password gets a new link from an Admin.

How much each person labeled and how often they agree with others is annotation's to say:
the module settings.TRACEMARK_ANNOTATOR_ACTIVITY names provides ``with_activity(people)``,
``agreement_by_person()`` and ``queue_quality(person)``.
"""

from importlib import import_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.tokens import default_token_generator
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_http_methods, require_POST

from . import tokens
from .forms import ActiveForm, AnnotatorCreateForm, RoleForm, TokenForm
from .models import ApiToken
from .roles import admin_required, role_of

User = get_user_model()


def _activity():
    return import_module(settings.TRACEMARK_ANNOTATOR_ACTIVITY)


def _people():
    """Everyone with their labeled count and last activity, in one query."""
    return _activity().with_activity(User.objects.prefetch_related("groups"))


def _rows(people):
    agreement = _activity().agreement_by_person()
    rows = []
    for person in people:
        agreeing, compared = agreement.get(person.pk, (0, 0))
        rows.append(
            {
                "person": person,
                "role": role_of(person) if person.is_active else None,
                "agreement": agreeing / compared if compared else None,
                "compared": compared,
            }
        )
    return rows


def _invite_link(request, user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])
    return request.build_absolute_uri(path)


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def annotator_list(request):
    form = AnnotatorCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        person = form.save()
        messages.success(
            request, f"{person.get_username()} can now sign in as {form.cleaned_data['role']}."
        )
        if person.has_usable_password():
            return redirect("accounts:annotator-detail", person.pk)
        return _detail(request, person, invite_link=_invite_link(request, person))
    people = _people().order_by("-is_active", "username")
    return render(request, "accounts/annotator_list.html", {"rows": _rows(people), "form": form})


def _get_person(person_id):
    tokens_prefetch = Prefetch("api_tokens", queryset=ApiToken.objects.order_by("-created_at"))
    return get_object_or_404(_people().prefetch_related(tokens_prefetch), pk=person_id)


def _detail(request, person, **extra):
    [row] = _rows([person])
    context = {
        "row": row,
        "person": person,
        "role_form": RoleForm(person=person, actor=request.user),
        "active_form": ActiveForm(
            person=person,
            actor=request.user,
            initial={"active": "true" if person.is_active else "false"},
        ),
        "token_form": TokenForm(),
        "quality": _activity().queue_quality(person),
        **extra,
    }
    return render(request, "accounts/annotator_detail.html", context)


@require_http_methods(["GET"])
@login_required
@admin_required
def annotator_detail(request, person_id):
    return _detail(request, _get_person(person_id))


def _change(request, person_id, form_class, context_name, success):
    person = _get_person(person_id)
    form = form_class(request.POST, person=person, actor=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, success(person))
        return redirect("accounts:annotator-detail", person.pk)
    return _detail(request, person, **{context_name: form})


@require_POST
@login_required
@admin_required
def annotator_role(request, person_id):
    return _change(
        request,
        person_id,
        RoleForm,
        "role_form",
        lambda p: f"{p.get_username()} is now {role_of(p).value}.",
    )


@require_POST
@login_required
@admin_required
def annotator_active(request, person_id):
    return _change(
        request,
        person_id,
        ActiveForm,
        "active_form",
        lambda p: f"{p.get_username()} is {'active' if p.is_active else 'deactivated'}.",
    )


@require_POST
@login_required
@admin_required
def annotator_password_link(request, person_id):
    """A new link where the person chooses a password; the old one works until then."""
    person = _get_person(person_id)
    if not person.is_active:
        messages.error(request, f"{person.get_username()} is deactivated: reactivate them first.")
        return redirect("accounts:annotator-detail", person.pk)
    return _detail(request, person, password_link=_invite_link(request, person))


@require_POST
@login_required
@admin_required
def token_create(request, person_id):
    person = _get_person(person_id)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _detail(request, person, token_form=form)
    token, raw = tokens.create_token(user=person, name=form.cleaned_data["name"])
    # Fetched again so the new token appears in the list below its secret.
    return _detail(request, _get_person(person_id), new_token=token, new_token_raw=raw)


@require_POST
@login_required
@admin_required
def token_revoke(request, person_id, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user_id=person_id)
    tokens.revoke_token(token)
    messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("accounts:annotator-detail", person_id)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the form was open too long or across a sign-in; reload and retry."""
    return render(request, "403_csrf.html", status=403)
