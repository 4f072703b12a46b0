"""MLflow REST plumbing shared by traces.api and annotation.api.

The MLflow client retries 408, 429 and 5xx answers for minutes, so every client mistake
must become a 4xx in MLflow's error shape: ``{"error_code": ..., "message": ...}``.
Request bodies are read here, within size limits, and decompressed when the client says so.
"""

import base64
import binascii
import json
import sys
import zlib
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, StreamingHttpResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from accounts.roles import can_write, is_admin

from .validation import INT64_MAX, InvalidInput, check_json, check_text, is_storable_text

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
# Service validation codes that mean "someone else's write got there first".
CONFLICT_CODES = {"conflict", "duplicate"}
API_PREFIXES = ("/api/", "/v1/traces")
# Seconds a client is asked to wait while the database cannot be reached.
RETRY_AFTER_SECONDS = 5
# The service validation code of a write the caller's user may not make (not their entry).
DENIED_CODE = "permission_denied"


class ApiError(Exception):
    def __init__(self, message: str, *, code: str = INVALID_PARAMETER_VALUE, status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def not_found(message: str) -> ApiError:
    return ApiError(message, code=RESOURCE_DOES_NOT_EXIST, status=404)


def json_response(payload: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(
        json_dumps(payload),
        status=status,
        content_type="application/json",
    )


STREAMED = "(streamed)"
# Bytes gathered before a streamed answer writes them out.
STREAM_CHUNK_BYTES = 256 * 1024


def streamed_json_response(payload: dict, items) -> StreamingHttpResponse:
    """``payload`` as JSON with the one value STREAMED written as the list of ``items``, each
    encoded when its turn comes: the answer never holds more than a chunk of them."""
    head, tail = json_dumps(payload).split(json.dumps(STREAMED), 1)

    def chunks():
        buffer = [head.encode(), b"["]
        size, first = 0, True
        for item in items:
            encoded = json_dumps(item).encode()
            buffer.append(encoded if first else b"," + encoded)
            size, first = size + len(encoded), False
            if size >= STREAM_CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        buffer += [b"]", tail.encode()]
        yield b"".join(buffer)

    return StreamingHttpResponse(chunks(), content_type="application/json")


def json_dumps(payload) -> str:
    return json.dumps(payload, separators=(",", ":"))


def error_response(
    message: str, *, code: str = INVALID_PARAMETER_VALUE, status: int = 400
) -> HttpResponse:
    return json_response({"error_code": code, "message": message}, status=status)


@csrf_exempt
def endpoint_not_found(request, *args, **kwargs):
    return error_response(
        f"No endpoint {request.method} {request.path}.", code="ENDPOINT_NOT_FOUND", status=404
    )


def api_view(*, write: bool = False, admin: bool = False):
    """Wrap an API view: role check for writes, and MLflow-shaped errors for client mistakes.

    The caller is authenticated already (accounts.auth.ApiAuthMiddleware); these views take
    no cookies, so CSRF does not apply.
    """

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if (admin and not is_admin(request.user)) or (write and not can_write(request.user)):
                return _denied("Your role does not allow this operation.")
            try:
                return view(request, *args, **kwargs)
            except InvalidInput as exc:
                return error_response(str(exc))
            except ApiError as exc:
                return error_response(exc.message, code=exc.code, status=exc.status)
            except ValidationError as exc:
                code, message = getattr(exc, "code", None), " ".join(exc.messages)
                if code in CONFLICT_CODES:
                    return error_response(message, code="RESOURCE_CONFLICT", status=409)
                if code == DENIED_CODE:
                    return _denied(message)
                return error_response(message)

        return wrapped

    return decorator


def server_error(request):
    """handler500: MLflow's error shape on API paths (503 while the database is down)."""
    if not request.path.startswith(API_PREFIXES):
        return defaults.server_error(request)
    exc = sys.exception()
    # Django's wrappers of the driver's "cannot connect" and "connection lost" errors.
    if isinstance(exc, OperationalError | InterfaceError):
        response = error_response(
            "The database is unreachable; try again shortly.",
            code="TEMPORARILY_UNAVAILABLE",
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return error_response(
        "An internal error occurred; it has been logged.", code="INTERNAL_ERROR", status=500
    )


def _denied(message: str) -> HttpResponse:
    return error_response(message, code="PERMISSION_DENIED", status=403)


def dispatch(**views):
    """One URL, one view per HTTP method (``GET=..., POST=...``).

    MLflow registers each RPC as one method on one path, so another method on a known path is
    an endpoint it does not have: 404 ENDPOINT_NOT_FOUND, as for an unknown path, not 405.
    """

    @csrf_exempt
    def view(request, *args, **kwargs):
        handler = views.get(request.method)
        if not all(is_storable_text(value) for value in kwargs.values()):
            return error_response("The URL holds a NUL character or a lone surrogate.")
        if handler is None:
            return endpoint_not_found(request)
        return handler(request, *args, **kwargs)

    return view


def read_body(request, limit: int | None = None) -> bytes:
    """The request body, decompressed per Content-Encoding; 413 beyond ``limit`` bytes."""
    limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError("Invalid Content-Length header.") from None
    if declared > limit:
        raise _too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    return _decompress(body, encoding, limit)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding == "gzip":
        attempts = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        # RFC 1950 zlib streams, and the raw deflate some clients send instead.
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise ApiError(f"Unsupported Content-Encoding: {encoding}.")
    for wbits in attempts:
        decompressor = zlib.decompressobj(wbits)
        try:
            data = decompressor.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit or decompressor.unconsumed_tail:
            raise _too_large(limit)
        if not decompressor.eof:
            raise ApiError(f"The request body is truncated {encoding} data.")
        return data
    raise ApiError(f"The request body is not valid {encoding} data.")


def trace_too_large(message: str) -> ApiError:
    return ApiError(message, code="REQUEST_LIMIT_EXCEEDED", status=413)


def check_span_reads(traces) -> None:
    """Refuse to serve spans beyond the per-trace limits, which traces stored under larger
    limits can exceed: an answer is built in memory, a few times the spans' size."""
    if any(trace.span_count > settings.TRACEMARK_MAX_TRACE_SPANS for trace in traces) or (
        sum(trace.span_bytes for trace in traces) > settings.TRACEMARK_MAX_TRACE_BYTES
    ):
        raise trace_too_large(
            "These spans are larger than MAX_TRACE_SPANS or MAX_TRACE_BYTES allow to read; "
            "ask for fewer traces at once."
        )


def _too_large(limit: int) -> ApiError:
    return ApiError(
        f"The request body is larger than the limit of {limit} bytes.",
        code="REQUEST_LIMIT_EXCEEDED",
        status=413,
    )


class Params:
    """Typed access to a request message: the JSON body, or the query string for GET.

    The MLflow client sends GET messages as query strings (repeated keys for lists,
    ``True``/``False`` for booleans) and everything else as JSON bodies, DELETE included.
    """

    def __init__(self, data: dict, *, query=None):
        self._data = data
        self._query = query

    @classmethod
    def of(cls, request, limit: int | None = None) -> "Params":
        """Refuses bodies that are not JSON objects, or hold what cannot be stored."""
        if request.method == "GET":
            for name, values in request.GET.lists():
                for value in (name, *values):
                    check_text(value, where=f"Query parameter {name[:40]!r}")
            return cls({}, query=request.GET)
        body = read_body(request, limit)
        if not body.strip():
            return cls({})
        # A cross-site form can post text/plain; the client always says application/json.
        if not is_json_content_type(request.headers.get("Content-Type", "")):
            raise ApiError("The request body must be sent as Content-Type: application/json.")
        data = parse_json(body)
        if not isinstance(data, dict):
            raise ApiError("The request body must be a JSON object.")
        check_json(data)
        return cls(data)

    def raw(self, name):
        """The value as sent, unchecked."""
        if self._query is not None:
            return self._query.get(name)
        return self._data.get(name)

    def has(self, name: str) -> bool:
        return self.raw(name) is not None

    def str(self, name: str, *, required: bool = False, default: str | None = None):
        value = self.raw(name)
        if value is None:
            if required:
                raise ApiError(f"Missing value for required parameter '{name}'.")
            return default
        if not isinstance(value, str):
            raise _wrong_type(name, value, "a string")
        return value

    def int(self, name: str, *, default: int | None = None):
        """An int64, from a JSON number or a string of ASCII digits (int64 travels as both)."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str) and value.removeprefix("-").isascii():
            value = int(value) if value.removeprefix("-").isdigit() else value
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, value, "an integer")
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ApiError(f"Invalid value for parameter '{name}' supplied: out of int64 range.")
        return value

    def bool(self, name: str, *, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _wrong_type(name, value, "a boolean")

    def str_list(self, name: str) -> list[str]:
        values = self._query.getlist(name) if self._query is not None else self._data.get(name)
        if values is None:
            return []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _wrong_type(name, values, "a list of strings")
        return values

    def list(self, name: str) -> list:
        value = self._data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _wrong_type(name, value, "a list")
        return value

    def dict(self, name: str, *, required: bool = False) -> dict:
        value = self._data.get(name)
        if value is None:
            if required:
                raise ApiError(f"Missing value for required parameter '{name}'.")
            return {}
        if not isinstance(value, dict):
            raise _wrong_type(name, value, "an object")
        return value


def is_json_content_type(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def parse_json(body: bytes):
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ApiError("The request body is not valid JSON.") from None
    except RecursionError:
        raise ApiError("The request body is nested too deeply.") from None


def _wrong_type(name: str, value, expected: str) -> ApiError:
    shown = json.dumps(value)[:100] if not isinstance(value, str) else repr(value[:100])
    return ApiError(
        f"Invalid value {shown} for parameter '{name}' supplied: expected {expected}, "
        f"got {type(value).__name__}."
    )


MAX_OFFSET = 10_000_000


def encode_offset_token(offset: int) -> str:
    """MLflow's page token for offset paging: base64 of ``{"offset": N}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_offset_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        raise ApiError("Invalid page token: it was not made by this server.") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise ApiError("Invalid page token: it was not made by this server.")
    return offset
