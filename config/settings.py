"""Tracemark settings: every knob comes from an environment variable (see .env.example)."""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "template_partials",
    "accounts",
    "traces",
    "annotation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.auth.ApiAuthMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and API writers share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not shared memory: threads and a live HTTP server process then see
    # the same database, and concurrent writers wait for the lock instead of failing.
    # One file per test process, so parallel runs on one machine never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str(
            "TEST_DATABASE_NAME",
            str(Path(tempfile.gettempdir()) / f"tracemark-test-{os.getpid()}.sqlite3"),
        )
    }

elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compiling pays off for long analytic queries. Tracemark's are short, and where
    # the planner overestimates one (an export's column discovery) it spent 200 ms
    # compiling a query that runs in 250.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed file names need `collectstatic`; off in development and tests.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
# Without collected files, whitenoise serves from the source folders as they change.
WHITENOISE_AUTOREFRESH = not STATIC_MANIFEST

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
# No LOGOUT_REDIRECT_URL: signing out says so (registration/logged_out.html) and leads back
# to sign-in. A form posted with a stale CSRF token gets the app's 403 page, not Django's.
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"

# Which assessments a user may not see yet (blind queues). traces' list and filters call it
# without importing annotation, as auth calls AUTHENTICATION_BACKENDS.
TRACEMARK_HIDDEN_ANSWERS = "annotation.queues.hidden_answers_condition"
# The module whose with_activity(people) and agreement_by_person() the annotator pages in
# accounts show, found the same way.
TRACEMARK_ANNOTATOR_ACTIVITY = "annotation.people"

# Request size limits; the API answers 413 in MLflow's error format above these.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 20 * 1024 * 1024)
TRACEMARK_MAX_SPAN_UPLOAD_BYTES = env_int("MAX_SPAN_UPLOAD_BYTES", 50 * 1024 * 1024)
# Per-trace limits: spans, and their size as JSON. Span uploads beyond them get 413, and
# reads of a trace stored beyond them (under larger limits) are refused the same way.
TRACEMARK_MAX_TRACE_SPANS = env_int("MAX_TRACE_SPANS", 10_000)
TRACEMARK_MAX_TRACE_BYTES = env_int("MAX_TRACE_BYTES", 100 * 1024 * 1024)
# Failed sign-ins (login form and API) allowed per username and client address within the
# window (seconds); see accounts.lockout.
TRACEMARK_AUTH_MAX_FAILURES = env_int("AUTH_MAX_FAILURES", 20)
TRACEMARK_AUTH_FAILURE_WINDOW = env_int("AUTH_FAILURE_WINDOW_SECONDS", 300)
# How long a worker remembers an API token's user: the most a revoked token, deactivated
# account or changed role keeps working in other worker processes.
TRACEMARK_TOKEN_CACHE_SECONDS = env_int("TOKEN_CACHE_SECONDS", 2)
# How long a worker checks assessment writes against its copy of the label schemas before it
# asks whether they changed: the most a schema change takes to reach other worker processes.
TRACEMARK_SCHEMA_CACHE_SECONDS = env_int("SCHEMA_CACHE_SECONDS", 2)
# Reverse proxies in front of Tracemark that append to X-Forwarded-For (1 behind the nginx
# config in deploy/); 0 reads the client address from the connection alone.
TRACEMARK_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# The metadata key of an LLM judge's feedback naming the judge's version (prompt, model):
# the judge report splits a judge's figures by its values.
TRACEMARK_JUDGE_VERSION_KEY = env_str("JUDGE_VERSION_KEY", "judge_version")

# Security headers. HTTPS-only settings switch on when DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
