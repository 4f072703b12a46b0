"""Sign-in failures counted per (username, client address), for the login form and the API.

A wrong password counts against the username it was tried for, from the address it came
from; at ``TRACEMARK_AUTH_MAX_FAILURES`` within the window that pair is refused, even with the
right password, until the window passes. Someone guessing from elsewhere therefore cannot
lock a person out of their own address, and one person's typos do not lock out others
behind the same proxy. The login form and API Basic share the count, so switching between
them gains no attempts. Failures without a username (wrong tokens, malformed headers) count
under the empty username.

The client address is REMOTE_ADDR, or behind ``TRACEMARK_TRUSTED_PROXY_COUNT`` reverse
proxies that each append the address they saw to X-Forwarded-For, the entry that many
places from its end: what the outermost trusted proxy saw. Entries further left are
whatever the client sent and are never trusted.

The counts live in the database so every web worker process sees the same ones.
"""

import ipaddress
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import AuthFailure

MAX_USERNAME = AuthFailure._meta.get_field("username").max_length
MAX_ADDRESS = AuthFailure._meta.get_field("address").max_length


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")[:MAX_ADDRESS]
    proxies = settings.TRACEMARK_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    if len(entries) < proxies:
        # Not through every trusted proxy: nothing in the header can be believed.
        return remote
    candidate = entries[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _window_start():
    return timezone.now() - timedelta(seconds=settings.TRACEMARK_AUTH_FAILURE_WINDOW)


def _key(username: str | None, address: str) -> dict:
    return {"username": (username or "")[:MAX_USERNAME], "address": address[:MAX_ADDRESS]}


def is_locked_out(username: str | None, address: str) -> bool:
    recent = AuthFailure.objects.filter(**_key(username, address), failed_at__gte=_window_start())
    return recent.count() >= settings.TRACEMARK_AUTH_MAX_FAILURES


def record_failure(username: str | None, address: str) -> None:
    AuthFailure.objects.filter(failed_at__lt=_window_start()).delete()
    AuthFailure.objects.create(**_key(username, address), failed_at=timezone.now())
