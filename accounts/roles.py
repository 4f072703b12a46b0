"""Roles are Django groups; these helpers are the one place that interprets them.

Superusers count as Admins. A user in no group is treated as a Viewer (read-only).
"""

from enum import StrEnum
from functools import wraps

from django.core.exceptions import PermissionDenied


class Role(StrEnum):
    ADMIN = "Admin"
    REVIEWER = "Reviewer"
    VIEWER = "Viewer"


# The groups that grant more than reading, strongest first.
ROLE_GROUPS = (Role.ADMIN, Role.REVIEWER)


def role_of(user) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # Cached on the instance: one query per request however often a page asks.
    if not hasattr(user, "_tracemark_role"):
        remember_groups(user, [group.name for group in user.groups.all()])
    return user._tracemark_role


def remember_groups(user, names) -> None:
    """Tell role_of the user's group names, read along with the user, so it runs no query."""
    names = set(names)
    user._tracemark_role = next((role for role in ROLE_GROUPS if role in names), Role.VIEWER)


def can_write(user) -> bool:
    """Admins and Reviewers may add and edit assessments; Viewers only read."""
    return role_of(user) in (Role.ADMIN, Role.REVIEWER)


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def set_role(user, role: Role) -> None:
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    group, _ = Group.objects.get_or_create(name=role.value)
    user.groups.add(group)
    user.__dict__.pop("_tracemark_role", None)


def role_required(check):
    """View decorator: 403 for signed-in users whose role fails ``check`` (e.g. can_write)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


write_required = role_required(can_write)
admin_required = role_required(is_admin)
