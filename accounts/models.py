"""Who people are to Tracemark beyond Django's user: API tokens, and rejected sign-ins.

The tables were made by the annotation app and keep their names (``db_table``).
"""

import hashlib

from django.conf import settings
from django.db import models


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A revocable credential for the MLflow client; only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, default="default")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "annotation_apitoken"  # created by annotation's first migration
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuthFailure(models.Model):
    """One rejected sign-in (login form or API), kept briefly to limit guessing; see lockout.

    A table rather than Django's cache: every web worker process must see the same count.
    """

    # The username tried; empty for a token or a header without one.
    username = models.CharField(max_length=150, blank=True, default="")
    # The client address (accounts.lockout.client_address); it may be empty behind a Unix
    # socket.
    address = models.CharField(max_length=64, blank=True)
    failed_at = models.DateTimeField()

    class Meta:
        db_table = "annotation_authfailure"
        indexes = [
            models.Index(fields=["username", "address", "failed_at"], name="auth_failure_key_idx"),
            # Expired rows are deleted by age.
            models.Index(fields=["failed_at"], name="auth_failure_time_idx"),
        ]

    def __str__(self):
        return f"{self.username}@{self.address} at {self.failed_at:%Y-%m-%d %H:%M:%S}"
