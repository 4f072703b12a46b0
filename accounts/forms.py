"""Forms of the annotators page: create or invite a person, set their role, (de)activate,
name a new API token. Each ``save`` is the only write its view makes. And the sign-in form."""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, UsernameField
from django.core.exceptions import ValidationError

from .lockout import client_address, is_locked_out, record_failure
from .roles import Role, role_of, set_role
from .tokens import forget_user

ROLE_CHOICES = [(role.value, role.value) for role in Role]
ROLE_HELP = "Admins manage schemas, queues and people; Reviewers label; Viewers only read."


class AnnotatorCreateForm(forms.ModelForm):
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.REVIEWER, help_text=ROLE_HELP)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to get an invitation link where they choose their own.",
    )

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "first_name", "last_name"]
        field_classes = {"username": UsernameField}

    def clean_password(self):
        password = self.cleaned_data["password"]
        if password:
            user = self.instance
            user.username = self.cleaned_data.get("username", "")
            password_validation.validate_password(password, user)
        return password

    def save(self, commit=True):
        user = super().save(commit=False)
        if self.cleaned_data["password"]:
            user.set_password(self.cleaned_data["password"])
        else:
            user.set_unusable_password()
        user.save()
        set_role(user, Role(self.cleaned_data["role"]))
        return user


class _AboutSomeoneForm(forms.Form):
    """A change to ``person`` made by ``actor``; nobody may lock themselves out."""

    def __init__(self, *args, person, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.person = person
        self.actor = actor


class RoleForm(_AboutSomeoneForm):
    role = forms.ChoiceField(choices=ROLE_CHOICES, help_text=ROLE_HELP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = role_of(self.person)
        if current is not None:
            self.fields["role"].initial = current.value

    def clean_role(self):
        role = Role(self.cleaned_data["role"])
        if self.person.pk == self.actor.pk and role != Role.ADMIN:
            raise forms.ValidationError("You cannot take away your own Admin role.")
        return role

    def save(self):
        set_role(self.person, self.cleaned_data["role"])
        forget_user(self.person.pk)
        return self.person


class ActiveForm(_AboutSomeoneForm):
    """Deactivating keeps the person and everything they wrote; they just cannot sign in,
    and their API tokens stop working."""

    active = forms.TypedChoiceField(
        choices=[("true", "Active"), ("false", "Deactivated")], coerce=lambda v: v == "true"
    )

    def clean_active(self):
        active = self.cleaned_data["active"]
        if self.person.pk == self.actor.pk and not active:
            raise forms.ValidationError("You cannot deactivate yourself.")
        return active

    def save(self):
        self.person.is_active = self.cleaned_data["active"]
        self.person.save(update_fields=["is_active"])
        forget_user(self.person.pk)
        return self.person


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, initial="default", help_text="Where it will be used, e.g. ci-judge."
    )


class SignInForm(AuthenticationForm):
    """Django's sign-in form, limited per username and address like API Basic (lockout)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked_out": (
            "Too many failed sign-in attempts for this account from your address. "
            "Try again in a few minutes."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        address = client_address(self.request)
        if is_locked_out(username, address):
            raise ValidationError(self.error_messages["locked_out"], code="locked_out")
        try:
            return super().clean()
        except ValidationError:
            record_failure(username, address)
            raise
