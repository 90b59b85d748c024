"""Kanri settings: every value comes from the environment through django-environ.

`.env.example` documents each variable. With DEBUG on, missing values fall back to
local development defaults; with DEBUG off, a missing secret stops start-up.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# The process environment wins over the file. ENV_FILE="" reads no file (the test suite
# does this, so a developer's .env cannot change what the tests run against).
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def required(name, dev_default):
    """Return the variable, or the development default when DEBUG is on."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. It is required when DEBUG is off; see .env.example."
    )


SECRET_KEY = required("SECRET_KEY", "django-insecure-kanri-development-only")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is not set. It is required when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs page's assets, served locally (no CDN)
    "django_filters",
    "djstripe",
    "django_q",
    "more_admin_filters",  # multi-select list filters that keep `__in` in the URL
    "rangefilter",  # date range list filters
    "integrations",
    "automations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language); UserPreferencesMiddleware below lets a user's
    # profile override it once they are known.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "automations.middleware.UserPreferencesMiddleware",  # profile language and time zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

# Embedded default: one SQLite file in WAL mode. Production shape: DATABASE_URL=postgres://…
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kanri.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process and the workers read while one writes; IMMEDIATE takes the
    # write lock at BEGIN, so concurrent webhook deliveries queue on busy_timeout instead of
    # failing with "database is locked" when a read transaction upgrades to a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # A file, not :memory:, so that a real django-q2 cluster in the end-to-end tests
    # (a separate process) sees the test database; one per test process, so two test
    # runs on one checkout never share it (the cluster is handed the name it uses).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    VAR_DIR.mkdir(exist_ok=True)
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Health checks on: after a database restart or failover (pg_terminate_backend in
    # tests/reliability), each web thread's dead persistent connection answered its next
    # request with a 500. Kanri's backend checks the socket instead of sending a `SELECT 1`
    # per request and per task (config/postgresql/base.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "config.postgresql"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
# Kanri's catalogs: each app's locale/ (integrations has its own, as it never depends on
# automations); this one also holds the project templates' strings, so makemessages run
# from the project root has a home for templates/.
LOCALE_PATHS = [BASE_DIR / "automations" / "locale"]
# The site's zone; each user may choose their own under "My preferences".
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# Datetimes Django renders carry their zone ("2026-12-01 21:00 JST"): automations/timefmt.py.
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGIN_URL = "admin:login"

# Mail: smtp://user:password@host:587 (+ ?ssl=True), or consolemail:// in development.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kanri <kanri@localhost>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Stripe, through dj-stripe. One secret key; its prefix says whether it is live.
STRIPE_SECRET_KEY = required("STRIPE_SECRET_KEY", "sk_test_" + "0" * 24)
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
if STRIPE_LIVE_MODE:
    STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY
else:
    STRIPE_TEST_SECRET_KEY = STRIPE_SECRET_KEY
# Points the SDK at a local fake in development and tests; dj-stripe warns if set with
# DEBUG off, so it is only defined when given.
if env.str("STRIPE_API_HOST", default=""):
    STRIPE_API_HOST = env.str("STRIPE_API_HOST")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
# Said explicitly: signatures, never "none". Kanri's receiver (integrations/stripe_webhooks.py)
# verifies with the endpoint's secret only; dj-stripe's own view, which with DEBUG on would
# take a secret from an `X-Djstripe-Webhook-Secret` request header, is never reached.
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# Largest webhook body Kanri accepts (Stripe's largest events are invoices with many lines).
STRIPE_WEBHOOK_MAX_BYTES = env.int("STRIPE_WEBHOOK_MAX_BYTES", default=1024 * 1024)

# Finished runs older than this many days are pruned daily (held and failed ones are kept).
KANRI_RUN_RETENTION_DAYS = env.int("KANRI_RUN_RETENTION_DAYS", default=90)
# The run engine's clocks (automations/engine/runner.py, automations/tasks.py), in seconds:
# a worker holds a run for LEASE and renews it every HEARTBEAT while alive; each worker
# looks for due retries and dead workers' runs every SWEEP; a queued run whose task has
# not started after LOST_AFTER is queued again; RETRY_DELAYS is the backoff after a
# provider error that gave no Retry-After.
KANRI_RUN_LEASE_SECONDS = env.float("KANRI_RUN_LEASE_SECONDS", default=30)
KANRI_HEARTBEAT_SECONDS = env.float("KANRI_HEARTBEAT_SECONDS", default=10)
KANRI_SWEEP_SECONDS = env.float("KANRI_SWEEP_SECONDS", default=5)
# How many unknown related objects (customers, charges) the mirror fetches from Stripe at
# once (integrations/stripe_sync.py, prefetch).
KANRI_MIRROR_FETCHES = env.int("MIRROR_FETCHES", default=4)
# Worker processes run at this nice value (automations/tasks.py, lower_priority).
KANRI_WORKER_NICE = env.int("QUEUE_WORKER_NICE", default=10)
# PostgreSQL: worker sessions commit without waiting for the WAL flush, except the writes
# made before a provider call (automations/engine/commits.py).
KANRI_WORKER_ASYNC_COMMIT = env.bool("QUEUE_WORKER_ASYNC_COMMIT", default=True)
KANRI_LOST_AFTER_SECONDS = env.float("KANRI_LOST_AFTER_SECONDS", default=120)
KANRI_RETRY_DELAYS = [
    float(s) for s in env.list("KANRI_RETRY_DELAYS", default=["30", "120", "600", "1800"])
]

# Failure alerts (automations/alerts.py): links in them start with this address (where
# staff open the admin), and after the first alert a workflow's further failures wait
# for one digest per this many minutes.
KANRI_BASE_URL = env.str("KANRI_BASE_URL", default="http://127.0.0.1:8000")
KANRI_ALERT_DIGEST_MINUTES = env.int("KANRI_ALERT_DIGEST_MINUTES", default=15)

SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
# Only tests and local fakes change this; slack-sdk's default is Slack's own API.
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")

# webhook.post (integrations/webhook_actions.py): the HMAC key receivers verify
# Kanri-Signature with (empty: the action refuses to send), timeouts in seconds, and the
# bytes of an answer kept in the audit.
KANRI_WEBHOOK_SIGNING_SECRET = env.str("KANRI_WEBHOOK_SIGNING_SECRET", default="")
KANRI_WEBHOOK_CONNECT_TIMEOUT = env.float("KANRI_WEBHOOK_CONNECT_TIMEOUT", default=5.0)
KANRI_WEBHOOK_READ_TIMEOUT = env.float("KANRI_WEBHOOK_READ_TIMEOUT", default=10.0)
KANRI_WEBHOOK_MAX_RESPONSE_BYTES = env.int("KANRI_WEBHOOK_MAX_RESPONSE_BYTES", default=4096)
# Development and tests only, both ignored with DEBUG off: plain http receivers, and
# loopback receivers on these ports (every other loopback, private or metadata address
# stays refused).
KANRI_WEBHOOK_ALLOW_HTTP = env.bool("KANRI_WEBHOOK_ALLOW_HTTP", default=False)
KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS = [
    int(port) for port in env.list("KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS", default=[])
]

# django-q2. Kanri keeps its own audit (Run/RunStep), so django-q2 stores no successful
# results (save_limit=-1): saving them cost ~8 ms per task and capped throughput at
# 70-90 tasks/s here. Failed tasks are acknowledged rather than redelivered: retries are
# decided by Kanri's runner and sweepers, which know what is safe to repeat.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("QUEUE_NAME", default="kanri"),
    "workers": env.int("QUEUE_WORKERS", default=4),
    "timeout": 60,  # a task running longer than this is killed …
    "retry": 90,  # … before the broker would hand it to a second worker
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.DjangoModelPermissions"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Machine clients: "Authorization: Bearer kanri_…" (hashed at rest).
        "automations.api.auth.TokenAuthentication",
        # People, in the browsable API (with CSRF).
        "rest_framework.authentication.SessionAuthentication",
    ],
    "EXCEPTION_HANDLER": "automations.api.errors.handle",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    # Writes (POST, PUT, PATCH, DELETE) are throttled per user; reads never are.
    "DEFAULT_THROTTLE_CLASSES": ["automations.api.auth.WriteThrottle"],
    "DEFAULT_THROTTLE_RATES": {"writes": env.str("API_WRITE_RATE", default="120/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kanri API",
    "VERSION": "0.1.0",
    # The docs page's JavaScript and CSS come from drf-spectacular-sidecar, served locally.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status": name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "automations.models.runs.Run.Status",
        "WorkflowStatusEnum": "automations.models.workflows.Workflow.Status",
        "RunStepStatusEnum": "automations.models.runs.RunStep.Status",
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives "django" its own console handler (in DEBUG) and lets
        # it propagate to root's as well: every warning and traceback was printed twice.
        # Listing it here removes that handler, so its records reach root's only.
        "django": {"handlers": []},
        "django-q": {"level": env.str("QUEUE_LOG_LEVEL", default="WARNING")},
        "stripe": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd, in tests and local runs
    },
}
