"""API tokens: created once and shown once, stored as a SHA-256 hash, revocable.

A worker process remembers a token's user for ``TOKEN_CACHE_SECONDS`` (2 by default), so
the MLflow client's bursts of requests (a traced call sends about ten) cost one lookup
instead of ten. That bounds how long a revoked token, a deactivated account or a changed
role keeps working in other processes; in the process that made the change it stops at
once (``revoke_token`` and ``forget_user``).
"""

import copy
import functools
import hmac
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from .models import ApiToken, hash_token
from .roles import ROLE_GROUPS, remember_groups

LAST_USED_PRECISION = timedelta(minutes=1)
TOKEN_PREFIX = "tmk_"  # noqa: S105 - a public marker, not a secret
CACHE_SIZE = 4096

_cache: dict[str, tuple[float, object]] = {}
_cache_lock = threading.Lock()


def create_token(*, user, name: str = "default") -> tuple[ApiToken, str]:
    """Return the stored token and the raw secret, which is never stored or shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_token(raw), prefix=raw[: len(TOKEN_PREFIX) + 6]
    )
    return token, raw


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    with _cache_lock:
        _cache.pop(token.token_hash, None)


def forget_user(user_id: int) -> None:
    """Drop this process's memory of the person's tokens (deactivated, or a new role)."""
    with _cache_lock:
        for digest in [d for d, (_, user) in _cache.items() if user.pk == user_id]:
            del _cache[digest]


def user_for_token(raw: str):
    """The active user owning an unrevoked token, or None. Lookup is by hash, then a
    constant-time comparison guards against any timing difference in the index lookup.

    The user comes with its role groups (see accounts.roles.remember_groups), so a write
    checks its role without another query. Each call gets its own copy of the user.
    """
    digest = hash_token(raw)
    now = time.monotonic()
    remembered = _cache.get(digest)
    if remembered is not None and remembered[0] > now:
        return _copy(remembered[1])
    user = _look_up(digest)
    with _cache_lock:
        if user is None:
            _cache.pop(digest, None)
            return None
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[digest] = (now + settings.TRACEMARK_TOKEN_CACHE_SECONDS, user)
    return _copy(user)


def _copy(user):
    clone = copy.copy(user)
    clone._state = copy.copy(user._state)
    return clone


def _look_up(digest: str):
    # A minute's precision is enough, and spares every API request a write.
    used_since = connection.ops.adapt_datetimefield_value(timezone.now() - LAST_USED_PRECISION)
    role_groups = [role.value for role in ROLE_GROUPS]
    params = [used_since, *role_groups, digest]
    found = list(get_user_model().objects.raw(_token_sql(), params))
    if not found or not hmac.compare_digest(found[0].token_hash, digest):
        return None
    user = found[0]
    remember_groups(user, [name for name in role_groups if getattr(user, _group_flag(name))])
    if not user.token_used_recently:
        ApiToken.objects.filter(pk=user.token_pk).update(last_used_at=timezone.now())
    return user


def _group_flag(name: str) -> str:
    return f"in_{name.lower()}_group"


@functools.cache
def _token_sql() -> str:
    """Every API request runs this one statement; written out, it takes a fraction of the
    CPU the ORM spends building the token, user and group queries it replaces. Names come
    from the models' metadata; the values are parameters: the time after which a use is
    recent, the role group names, the token's hash."""
    user = get_user_model()._meta
    groups = user.get_field("groups")
    member_of = (
        f"EXISTS (SELECT 1 FROM {groups.m2m_db_table()} m "  # noqa: S608
        f"JOIN {Group._meta.db_table} g ON g.id = m.{groups.m2m_reverse_name()} "
        f"WHERE m.{groups.m2m_column_name()} = u.{user.pk.column} AND g.name = %s)"
    )
    flags = "".join(f", {member_of} AS {_group_flag(role)}" for role in ROLE_GROUPS)
    return (
        "SELECT u.*, t.id AS token_pk, t.token_hash, "  # noqa: S608
        f"(t.last_used_at IS NOT NULL AND t.last_used_at >= %s) AS token_used_recently{flags} "
        f"FROM {ApiToken._meta.db_table} t "
        f"JOIN {user.db_table} u ON u.{user.pk.column} = t.user_id "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND u.is_active"
    )
