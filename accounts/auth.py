"""Authentication for the MLflow tracking API (``/api/`` and ``/v1/traces``).

The MLflow client sends ``Authorization`` on every request: ``Bearer <token>`` from
MLFLOW_TRACKING_TOKEN, or ``Basic`` from MLFLOW_TRACKING_USERNAME/PASSWORD (Basic wins when
both are set). The Basic password may be the account's password or one of its API tokens.
``/version`` and ``/health`` stay open: they reveal nothing and the client probes ``/version``
before it decides how to send spans.

Rejected credentials are counted per username and client address (``accounts.lockout``,
shared with the login form). At the limit, passwords for that username from that address
are refused without being checked until the window passes, and wrong tokens from that
address are refused without being counted. A valid token still works: 256 random bits
cannot be guessed, and skipping the count keeps a query off every token-authenticated
request. Requests without credentials are not counted.

Password checks cost a deliberately slow hash (about a third of a second). A successful
Basic login is remembered in-process for a few minutes under an HMAC of the credentials,
and only while the account's password hash is unchanged, so a client sending Basic
credentials on every request is not slowed down by each one.
"""

import base64
import binascii
import hashlib
import hmac
import threading
import time

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.http import JsonResponse

from .lockout import client_address, is_locked_out, record_failure
from .tokens import TOKEN_PREFIX, user_for_token

API_PREFIXES = ("/api/", "/v1/traces")
PASSWORD_MEMORY_SECONDS = 300
PASSWORD_MEMORY_SIZE = 1024


class ApiAuthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIXES):
            return self.get_response(request)
        header = request.headers.get("Authorization", "")
        if not header:
            return _unauthenticated("Credentials are required: set MLFLOW_TRACKING_TOKEN.", header)
        address = client_address(request)
        credentials = parse_authorization(header)
        # Tokens hold 256 random bits and cannot be guessed, so a valid one skips the lockout
        # query; passwords can be, so they are not even checked when locked out.
        is_password = credentials is not None and not credentials[1].startswith(TOKEN_PREFIX)
        username = credentials[0] if is_password else None
        if is_password and is_locked_out(username, address):
            return _locked_out(header)
        user = authenticate_credentials(*credentials) if credentials else None
        if user is None:
            if not is_password and is_locked_out(None, address):
                return _locked_out(header)
            record_failure(username, address)
            return _unauthenticated("The credentials are invalid, expired or revoked.", header)
        request.user = user
        return self.get_response(request)


def _locked_out(header: str) -> JsonResponse:
    return _unauthenticated(
        "Too many failed sign-in attempts with these credentials from this address; "
        "try again later.",
        header,
    )


def _unauthenticated(message: str, header: str) -> JsonResponse:
    response = JsonResponse({"error_code": "UNAUTHENTICATED", "message": message}, status=401)
    # A Basic challenge makes browsers prompt for a password and keep sending it, so only
    # clients that sent Basic credentials get one.
    challenge = 'Bearer realm="tracemark"'
    if header.strip().lower().startswith("basic"):
        challenge += ', Basic realm="tracemark"'
    response["WWW-Authenticate"] = challenge
    return response


def parse_authorization(header: str) -> tuple[str | None, str] | None:
    """(username, secret) from a Bearer (no username) or Basic header; None if malformed."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return (None, credentials) if credentials else None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, secret = decoded.partition(":")
    if not separator or not username or not secret:
        return None
    return username, secret


def authenticate_credentials(username: str | None, secret: str):
    """The active user owning the token or password, or None."""
    if username is None or secret.startswith(TOKEN_PREFIX):
        user = user_for_token(secret)
        if user is None or (username and not hmac.compare_digest(user.get_username(), username)):
            return None
        return user
    return _user_for_password(username, secret)


_remembered: dict[bytes, tuple[int, str, float]] = {}
_remembered_lock = threading.Lock()


def _user_for_password(username: str, password: str):
    key = hmac.new(
        settings.SECRET_KEY.encode(), f"{username}\0{password}".encode(), hashlib.sha256
    ).digest()
    remembered = _remembered.get(key)
    if remembered is not None and remembered[2] > time.monotonic():
        user = get_user_model().objects.filter(pk=remembered[0], is_active=True).first()
        if user is not None and hmac.compare_digest(user.password, remembered[1]):
            return user
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        return None
    with _remembered_lock:
        if len(_remembered) >= PASSWORD_MEMORY_SIZE:
            _remembered.clear()
        _remembered[key] = (user.pk, user.password, time.monotonic() + PASSWORD_MEMORY_SECONDS)
    return user
