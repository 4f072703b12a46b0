"""API tokens: created once and shown once, stored as a SHA-256 hash, revocable."""

import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken, hash_token

LAST_USED_PRECISION = timedelta(minutes=1)
TOKEN_PREFIX = "tmk_"  # noqa: S105 - a public marker, not a secret


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


def user_for_token(raw: str):
    """The active user owning an unrevoked token, or None. Lookup is by hash, then a
    constant-time comparison guards against any timing difference in the index lookup."""
    digest = hash_token(raw)
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    now = timezone.now()
    # A minute's precision is enough, and spares every API request a write.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
