"""Roles are Django groups; these helpers are the one place that interprets them.

Superusers count as Admins. A user in no group is treated as a Viewer (read-only).
"""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "Admin"
    REVIEWER = "Reviewer"
    VIEWER = "Viewer"


def role_of(user) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # Cached on the instance: one query per request however often a page asks.
    if not hasattr(user, "_tracemark_role"):
        names = {group.name for group in user.groups.all()}
        user._tracemark_role = next(
            (role for role in (Role.ADMIN, Role.REVIEWER) if role in names), Role.VIEWER
        )
    return user._tracemark_role


def can_write(user) -> bool:
    """Admins and Reviewers may add and edit assessments; Viewers only read."""
    return role_of(user) in (Role.ADMIN, Role.REVIEWER)


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def set_role(user, role: Role) -> None:
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    user.groups.add(Group.objects.get(name=role.value))
    user.__dict__.pop("_tracemark_role", None)
